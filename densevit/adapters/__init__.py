"""Adapters: turn a backbone's maps into the multi-scale pyramid a task head needs."""

from densevit.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "fpn": ("FPN",),
    "simple_pyramid": ("SimpleFeaturePyramid",),
    "stvit_r": ("STViTR",),
    "vit_comer": ("ViTCoMer", "build_vit_comer"),
})

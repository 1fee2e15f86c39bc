"""Backbones: the plain ViT (timm key layout), ViTPose's ViT, a ViT with a convolutional stem, Swin, STViT-R, timm."""

from densevit.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "hybrid_vit": ("HybridViT",),
    "interface": ("ShapeSpec",),
    "swin": ("SwinTransformer",),
    "swin_stvit_r": ("SwinSTViTR",),
    "timm_backbone": ("TimmBackbone",),
    "vit": ("ViT",),
    "vitpose": ("ViTPoseBackbone",),
})

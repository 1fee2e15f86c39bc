"""Task heads: R-CNN parts, UperNet, FCN/MLP segmentation heads, DPT, the restoration decoder, pose heatmap heads."""

from densevit.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "dpt": ("DPTHead",),
    "pose": ("ClassicPoseHead", "PyramidPoseHead", "SimplePoseHead"),
    "rcnn": ("box_head", "box_predictor", "mask_head", "mask_predictor", "rpn_head"),
    "restoration": ("RestorationHead",),
    "seg_heads": ("FCNHead", "MLPHead"),
    "uper": ("UPerHead",),
})

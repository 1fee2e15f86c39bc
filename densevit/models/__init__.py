"""Task models (plain modules with ``loss(batch)`` / ``predict(batch)``): Mask R-CNN, segmentor, depth, restoration,
top-down pose."""

from densevit.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "base": ("Batch", "TaskModel"),
    "depth": ("DepthEstimator",),
    "mask_rcnn": ("MaskRCNN",),
    "pose": ("TopDownPose",),
    "restoration": ("ImageRestorer",),
    "segmentor": ("Segmentor",),
})

"""Evaluators that reproduce the reference numbers: COCO boxes/masks and keypoints, mIoU, depth, PSNR/SSIM."""

from densevit.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "coco": ("CocoEvaluator",),
    "depth": ("DepthEvaluator",),
    "keypoints": ("CocoKeypointEvaluator",),
    "restoration": ("RestorationEvaluator",),
    "segmentation": ("SegmentationEvaluator",),
})

"""Evaluators that reproduce the reference numbers: COCO, mIoU, depth, PSNR/SSIM."""

from densevit.evaluation.coco import CocoEvaluator
from densevit.evaluation.depth import DepthEvaluator
from densevit.evaluation.restoration import RestorationEvaluator
from densevit.evaluation.segmentation import SegmentationEvaluator

__all__ = ["CocoEvaluator", "DepthEvaluator", "RestorationEvaluator", "SegmentationEvaluator"]

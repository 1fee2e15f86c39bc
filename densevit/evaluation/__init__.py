"""Evaluators that reproduce the reference numbers: COCO boxes/masks and keypoints, mIoU, depth, PSNR/SSIM."""

from densevit.evaluation.coco import CocoEvaluator
from densevit.evaluation.depth import DepthEvaluator
from densevit.evaluation.keypoints import CocoKeypointEvaluator
from densevit.evaluation.restoration import RestorationEvaluator
from densevit.evaluation.segmentation import SegmentationEvaluator

__all__ = ["CocoEvaluator", "CocoKeypointEvaluator", "DepthEvaluator", "RestorationEvaluator", "SegmentationEvaluator"]

"""Task models: Mask R-CNN, the segmentor and the depth estimator."""

from densevit.models.depth import DepthEstimator
from densevit.models.mask_rcnn import MaskRCNN
from densevit.models.segmentor import Segmentor

__all__ = ["DepthEstimator", "MaskRCNN", "Segmentor"]

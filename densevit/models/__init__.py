"""Task models (plain modules with ``loss(batch)`` / ``predict(batch)``): Mask R-CNN, segmentor, depth, pose."""

from densevit.models.base import Batch, TaskModel
from densevit.models.depth import DepthEstimator
from densevit.models.mask_rcnn import MaskRCNN
from densevit.models.pose import TopDownPose
from densevit.models.segmentor import Segmentor

__all__ = ["Batch", "DepthEstimator", "MaskRCNN", "Segmentor", "TaskModel", "TopDownPose"]

"""Mask R-CNN + ViT-CoMer-S (DINOv2-S init), COCO, 3x (paper: 52.1 box / 45.8 mask AP): the 1x recipe, 36 epochs."""

from mmengine.config import read_base

with read_base():
    from .mask_rcnn_vit_comer_s_dinov2_1x import *

    # isort: split
    from .._base_.schedules.coco_3x import *  # after the 1x config: replaces its schedule

"""Mask R-CNN + ViT-CoMer-S (DeiT-S init), COCO, 3x: 36 epochs, multi-scale training (paper: 48.8 / 43.0 AP).

The 1x recipe with the 3x schedule (lr x0.1 after epochs 27 and 33) and the paper's multi-scale training,
approximated with densevit's transforms: longer side random in [640, 1067] (mmdet's shorter side 480-800 on 4:3
images), random crop to at most 1067.
"""

from mmengine.config import read_base

with read_base():
    from .mask_rcnn_vit_comer_s_deit_1x import *

    # isort: split
    from .._base_.schedules.coco_3x import *  # after the 1x config: replaces its schedule

train_dataloader.dataset.transforms.update(scale_range=(0.6, 1.0))

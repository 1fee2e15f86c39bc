"""STViT-R-Swin-B Cascade Mask R-CNN with FPN, COCO, 3x (the paper: 52.2 box / 45.2 mask AP): the Swin-B Mask R-CNN
config (drop path 0.3) with the Cascade heads of cascade_mask_rcnn_stvit_r_swin_s_3x.py."""

from mmengine.config import read_base

with read_base():
    from .mask_rcnn_stvit_r_swin_b_3x import *

model.update(
    cascade=True,
    cascade_iou_thresholds=(0.5, 0.6, 0.7),
    cascade_reg_weights=((10.0, 10.0, 5.0, 5.0), (20.0, 20.0, 10.0, 10.0), (30.0, 30.0, 15.0, 15.0)),
)

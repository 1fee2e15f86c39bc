"""STViT-R-Swin-S Cascade Mask R-CNN with FPN, COCO, 3x: the detector the paper reports (51.8 box / 44.7 mask AP).

The Mask R-CNN config's backbone, data and released recipe (AdamW lr 1e-4, weight decay 0.05, drop path 0.2,
36 epochs at batch 16, lr x0.1 after epochs 27 and 33, 500 warm-up iterations) with ViTDet's Cascade heads: three
box stages at IoU 0.5 / 0.6 / 0.7, class-agnostic regression with box weights (10, 10, 5, 5), (20, 20, 10, 10),
(30, 30, 15, 15), stage losses summed (ViTDet's detectron2 Cascade R-CNN). The release trains mmdetection's cascade
heads
instead, whose loss details may differ.
"""

from mmengine.config import read_base

with read_base():
    from .mask_rcnn_stvit_r_swin_s_3x import *

model.update(
    cascade=True,
    cascade_iou_thresholds=(0.5, 0.6, 0.7),
    cascade_reg_weights=((10.0, 10.0, 5.0, 5.0), (20.0, 20.0, 10.0, 10.0), (30.0, 30.0, 15.0, 15.0)),
)

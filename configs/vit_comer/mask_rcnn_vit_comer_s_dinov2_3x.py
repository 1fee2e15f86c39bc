"""Mask R-CNN + ViT-CoMer-S (DINOv2-S init), COCO, 3x (paper: 52.1 box / 45.8 mask AP)."""

from mmengine.config import read_base

with read_base():
    from .mask_rcnn_vit_comer_s_dinov2_1x import *

epochs, lr_steps = 36, (27, 33)
max_iters = epochs * iters_per_epoch
param_scheduler[1].update(milestones=[e * iters_per_epoch for e in lr_steps])
train_cfg.update(max_iters=max_iters, val_interval=max_iters)

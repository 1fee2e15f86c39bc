"""ViTDet's 100-epoch COCO schedule at batch 64 (ViTDet, Li et al. 2022; detectron2's LazyConfig): step decay, short
warm-up."""

from mmengine.optim import LinearLR, MultiStepLR

max_iters = 184375  # 100 epochs of 118k images at batch 64
param_scheduler = [
    dict(type=LinearLR, start_factor=0.001, by_epoch=False, begin=0, end=250),
    dict(type=MultiStepLR, by_epoch=False, milestones=[163889, 177546], gamma=0.1),  # 88.9% and 96.3%
]
train_cfg = dict(by_epoch=False, max_iters=max_iters, val_interval=max_iters)

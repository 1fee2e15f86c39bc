"""mmdetection's 3x COCO schedule at batch 16: 36 epochs, lr x0.1 after epochs 27 and 33."""

from mmengine.config import read_base

with read_base():
    from .coco_1x import *

epochs, lr_steps = 36, (27, 33)
max_iters = epochs * iters_per_epoch
param_scheduler[1].update(milestones=[e * iters_per_epoch for e in lr_steps])
train_cfg.update(max_iters=max_iters, val_interval=max_iters)

"""mmdetection's 1x COCO schedule at batch 16: 12 epochs, lr x0.1 after epochs 8 and 11, 500 warm-up iterations."""

from mmengine.optim import LinearLR, MultiStepLR

iters_per_epoch = 7330  # 117,266 COCO train2017 images with annotations / batch 16
epochs, lr_steps = 12, (8, 11)
max_iters = epochs * iters_per_epoch
param_scheduler = [
    dict(type=LinearLR, start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type=MultiStepLR, by_epoch=False, milestones=[e * iters_per_epoch for e in lr_steps], gamma=0.1),
]
train_cfg = dict(by_epoch=False, max_iters=max_iters, val_interval=max_iters)

"""ViTPose's COCO schedule at batch 512 (64 per GPU x 8): 210 epochs, lr x0.1 after epochs 170 and 200.

Linear warm-up over 500 iterations from lr x 0.001; validation every 10 epochs (ViTPose's COCO configs). An epoch is
the 149,813
person instances of COCO train2017 with labelled keypoints, in batches of 512 (the last one short).
"""

from mmengine.optim import LinearLR, MultiStepLR

iters_per_epoch = 293  # ceil(149,813 / 512)
epochs, lr_steps = 210, (170, 200)
max_iters = epochs * iters_per_epoch
param_scheduler = [
    dict(type=LinearLR, start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type=MultiStepLR, by_epoch=False, milestones=[e * iters_per_epoch for e in lr_steps], gamma=0.1),
]
train_cfg = dict(by_epoch=False, max_iters=max_iters, val_interval=10 * iters_per_epoch)

"""The NYUv2 depth schedule at batch 16: 24 epochs, one-cycle style (warm-up from lr / 25, cosine decay).

Validation about every 2 epochs.
"""

from mmengine.optim import CosineAnnealingLR, LinearLR

max_iters = 36400  # 24 epochs of 24,231 images at batch 16
warmup_iters = 10900  # 30% of the run
param_scheduler = [
    dict(type=LinearLR, start_factor=0.04, by_epoch=False, begin=0, end=warmup_iters),
    dict(type=CosineAnnealingLR, by_epoch=False, begin=warmup_iters, end=max_iters, T_max=max_iters - warmup_iters,
         eta_min=1e-8),
]
train_cfg = dict(by_epoch=False, max_iters=max_iters, val_interval=3030)

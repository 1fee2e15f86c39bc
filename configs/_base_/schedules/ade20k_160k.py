"""The 160k-iteration ADE20K schedule at batch 16 (mmsegmentation's UperNet recipe as ViT-Adapter / ViT-CoMer train
it): linear warm-up, then poly decay to zero."""

from mmengine.optim import LinearLR, PolyLR

max_iters = 160000
warmup_iters = 1500
param_scheduler = [
    dict(type=LinearLR, start_factor=1e-6, by_epoch=False, begin=0, end=warmup_iters),
    dict(type=PolyLR, power=1.0, eta_min=0.0, by_epoch=False, begin=warmup_iters, end=max_iters),
]
train_cfg = dict(by_epoch=False, max_iters=max_iters, val_interval=16000)

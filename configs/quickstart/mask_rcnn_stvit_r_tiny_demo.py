"""Quickstart: the tiny ViTDet Mask R-CNN demo with STViT-R semantic tokens in its middle blocks, on a CPU.

Block 0 runs on the 16x16 image tokens, block 1 pools each 4x4 window to 2x2 semantic tokens, block 2 attends
among all 64 semantic tokens, block 3 recovers the image tokens. Generate the data first:
python -m densevit.datasets.demo data/demo --tasks instances semantic depth
"""

from mmengine.config import read_base

from densevit.adapters.stvit_r import STViTR

with read_base():
    from .mask_rcnn_vit_tiny_demo import *

model.backbone.backbone = dict(
    type=STViTR,
    vit=plain_vit,
    roles=("image", "init", "global", "recover"),
    window=4,
    pooled=2,
    init_kernel=8,
    recover_kernel=6,
)
max_iters = 1350  # fits the quickstarts' 10-minute CPU budget (configs/quickstart/README.md)
param_scheduler[1].update(end=max_iters, T_max=max_iters - 100)
train_cfg.update(max_iters=max_iters, val_interval=max_iters)

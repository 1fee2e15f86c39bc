"""Quickstart: a tiny hybrid ViT + DPT depth model trained from scratch on the built-in demo scenes, on a CPU.

Generate the data first: python -m densevit.datasets.demo data/demo --tasks instances semantic depth
The backbone is DPT-Hybrid's layout at toy size: a convolutional stem (Xiao et al., 2021) in place of the 16x16
patch projection, two ViT blocks, and the stem's stride-4 and stride-8 maps fed to the DPT head with the two
blocks' token maps: more accurate than a 4-block plain ViT at every budget tried, for a fifth more time a step.
The head's last two convs run at 64x64 and the depth logits are upsampled (``full_res_output=False``): a fifth
cheaper than at full resolution, as accurate. Measurements: docs/experiments.md.
"""

from mmengine.config import read_base
from mmengine.optim import CosineAnnealingLR, LinearLR
from torch.optim import AdamW

from densevit.backbones.hybrid_vit import HybridViT
from densevit.engine.data import DataPreprocessor
from densevit.models.depth import DepthEstimator

with read_base():
    from .._base_.datasets.demo_depth import *
    from .._base_.default_runtime import *

data_preprocessor = dict(type=DataPreprocessor, size_divisor=32)

model = dict(
    type=DepthEstimator,
    backbone=dict(
        type=HybridViT,
        img_size=image_size,
        embed_dim=192,
        depth=2,
        num_heads=3,
        out_indices=(0, 1),
        stem_widths=(32, 64, 128, 192),
        stem_out_indices=(1, 2),  # strides 4 and 8, then the two blocks' token maps at 16
    ),
    reassemble_channels=(32, 64, 128, 192),
    features=32,
    full_res_output=False,
    grad_weight=0.5,  # the gradient-matching loss: a better abs_rel for 4% more time a step
    min_depth=1e-3,
    max_depth=max_depth,
    test_size=(image_size, image_size),
)

optimizer = dict(type=AdamW, lr=1e-3, weight_decay=0.01)
max_iters = 3200
param_scheduler = [
    dict(type=LinearLR, start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type=CosineAnnealingLR, by_epoch=False, begin=50, end=max_iters, T_max=max_iters - 50, eta_min=1e-5),
]
train_cfg = dict(by_epoch=False, max_iters=max_iters, val_interval=max_iters)
default_hooks.checkpoint.update(interval=800, max_keep_ckpts=2)
default_hooks.logger.update(interval=25)

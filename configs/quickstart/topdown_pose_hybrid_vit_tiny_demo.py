"""Quickstart: a tiny hybrid ViT + pyramid heatmap head trained from scratch on the demo figures, on a CPU.

Generate the data first: python -m densevit.datasets.demo data/demo --tasks pose
Top-down as ViTPose: 128x96 person crops (UDP affine, mmpose's flip / half-body / shift / scale / rotation),
UDP heatmaps at stride 4 (32x24), DARK-UDP decoding with flip test, OKS AP with ground-truth boxes. The backbone is
DPT-Hybrid's layout at toy size: a convolutional stem whose stride-4 and stride-8 maps join the two ViT blocks'
stride-16 map in the head (``PyramidPoseHead``). The schedule is a first guess, not yet calibrated.
"""

from mmengine.config import read_base
from mmengine.optim import CosineAnnealingLR, LinearLR
from torch.optim import AdamW

from densevit.backbones.hybrid_vit import HybridViT
from densevit.engine.data import DataPreprocessor
from densevit.heads.pose import PyramidPoseHead
from densevit.models.pose import TopDownPose

with read_base():
    from .._base_.datasets.demo_pose import *
    from .._base_.default_runtime import *

embed_dim = 192
stem_widths = (32, 64, 128, 192)

# crops are never padded: every crop already has the model's input size
data_preprocessor = dict(type=DataPreprocessor, size_divisor=1)

model = dict(
    type=TopDownPose,
    backbone=dict(type=HybridViT, img_size=input_size[0], embed_dim=embed_dim, depth=2, num_heads=3,
                  stem_widths=stem_widths, stem_out_indices=(1, 2)),
    head=dict(type=PyramidPoseHead, in_channels=(stem_widths[1], stem_widths[2], embed_dim), strides=(4, 8, 16),
              num_keypoints=num_keypoints, fuse_strides=(4, 8, 16), channels=64),
    num_keypoints=num_keypoints,
    flip_pairs=flip_pairs,
)

optimizer = dict(type=AdamW, lr=2e-3, weight_decay=0.05)
max_iters = 2000
param_scheduler = [
    dict(type=LinearLR, start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(type=CosineAnnealingLR, by_epoch=False, begin=100, end=max_iters, T_max=max_iters - 100, eta_min=2e-5),
]
train_cfg = dict(by_epoch=False, max_iters=max_iters, val_interval=max_iters)
default_hooks.checkpoint.update(interval=1000, max_keep_ckpts=2)
default_hooks.logger.update(interval=25)

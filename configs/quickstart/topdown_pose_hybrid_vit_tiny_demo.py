"""Quickstart: a tiny hybrid ViT + pyramid heatmap head trained from scratch on the demo figures, on a CPU.

Generate the data first: python -m densevit.datasets.demo data/demo --tasks pose
Top-down as ViTPose: 128x96 person crops (UDP affine, mmpose's flip / half-body / shift / scale / rotation),
DARK-UDP decoding with flip test, OKS AP with ground-truth boxes. The backbone is DPT-Hybrid's layout at toy size:
a convolutional stem whose stride-2, 4 and 8 maps join the two ViT blocks' stride-16 map in the head
(``PyramidPoseHead``). Two deviations from ViTPose, both calibrated on the demo validation figures
(docs/experiments.md): UDP heatmaps at stride 2 (64x48), because the demo's people are about 80 px tall and their
faces' joints 2-4 px apart (stride 4 gave 59.7 AP, stride 2 71.6 AP, same schedule); and milder augmentation than
mmpose's COCO defaults (rotation 30 degrees, scale 0.75-1.25, half-body 0.1), which a 7-minute schedule needs
(the defaults gave 50.8 AP, the milder ones 59.7). OKS AP 70.8 in 7 min 31 s on 2 cores.
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
                  stem_widths=stem_widths, stem_out_indices=(0, 1, 2)),
    head=dict(type=PyramidPoseHead, in_channels=(*stem_widths[:3], embed_dim), strides=(2, 4, 8, 16),
              num_keypoints=num_keypoints, fuse_strides=(2, 4, 8, 16), channels=32),
    num_keypoints=num_keypoints,
    flip_pairs=flip_pairs,
)

optimizer = dict(type=AdamW, lr=2e-3, weight_decay=0.05)
max_iters = 2000  # 0.26 s a step on 2 cores
param_scheduler = [
    dict(type=LinearLR, start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(type=CosineAnnealingLR, by_epoch=False, begin=100, end=max_iters, T_max=max_iters - 100, eta_min=2e-5),
]
train_cfg = dict(by_epoch=False, max_iters=max_iters, val_interval=max_iters)
train_dataloader.dataset.augment = dict(rotate_factor=30.0, scale_range=(0.75, 1.25), half_body_prob=0.1)
default_hooks.checkpoint.update(interval=1000, max_keep_ckpts=2)
default_hooks.logger.update(interval=25)

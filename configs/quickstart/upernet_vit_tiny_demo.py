"""Quickstart: a tiny hybrid ViT + simple pyramid + UperNet trained from scratch on the demo label maps, on a CPU.

Generate the data first: python -m densevit.datasets.demo data/demo --tasks instances semantic
The choices below were measured in a 10-minute CPU budget (docs/experiments.md).
"""

from mmengine.config import read_base
from mmengine.optim import LinearLR, PolyLR
from torch.optim import AdamW

from densevit.adapters.simple_pyramid import SimpleFeaturePyramid
from densevit.backbones.hybrid_vit import HybridViT
from densevit.engine.data import DataPreprocessor
from densevit.heads.seg_heads import FCNHead
from densevit.heads.uper import UPerHead
from densevit.models.segmentor import Segmentor

with read_base():
    from .._base_.datasets.demo_semantic import *
    from .._base_.default_runtime import *

width = 64

data_preprocessor = dict(type=DataPreprocessor, size_divisor=32)

model = dict(
    type=Segmentor,
    backbone=dict(
        type=SimpleFeaturePyramid,
        # 2 blocks: more accurate than 4 in this budget, and a sixth cheaper a step. A convolutional stem whose
        # stride-8 map joins the stride-8 level: far more accurate than the plain ViT's patch projection
        backbone=dict(type=HybridViT, img_size=scale, embed_dim=192, depth=2, num_heads=3, stem_out_indices=(2,)),
        out_channels=width,
        scale_factors=(2.0, 1.0, 0.5),
        top_block=False,
    ),
    # no stride-4 level: a step costs a third less, and the extra steps beat the finer level in the same time
    decode_strides=(8, 16, 32),
    # PyTorch's default classifier init: mmsegmentation's normal(0, 0.01) stalls training from scratch
    decode_head=dict(type=UPerHead, in_channels=(width,) * 3, num_classes=len(classes), channels=width,
                     cls_init_std=None),
    aux_head=dict(type=FCNHead, in_channels=width, num_classes=len(classes), channels=width // 2, cls_init_std=None),
    test_mode="whole",
    test_scale=(scale, scale),
)

optimizer = dict(type=AdamW, lr=2e-3, weight_decay=0.01)  # better than 1e-3 and 3e-3
max_iters = 3200  # fits the 10-minute budget with room for slower machines
warmup = 100
param_scheduler = [
    dict(type=LinearLR, start_factor=0.01, by_epoch=False, begin=0, end=warmup),
    dict(type=PolyLR, power=1.0, eta_min=0.0, by_epoch=False, begin=warmup, end=max_iters),
]
train_cfg = dict(by_epoch=False, max_iters=max_iters, val_interval=max_iters)
default_hooks.checkpoint.update(interval=1600, max_keep_ckpts=2)
default_hooks.logger.update(interval=25)

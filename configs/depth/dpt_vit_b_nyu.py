"""DPT on a plain ViT-B (DINOv2 init, hooks after blocks 2, 5, 8, 11), NYUv2 (BTS split), 24 epochs at batch 16.

Reference recipe: Monocular-Depth-Estimation-Toolbox DPT / Depth Anything metric head (Ranftl et al. 2021; Yang et al.
2024). The other NYU
configs import this one and change the backbone.
"""

from mmengine.config import read_base
from torch.optim import AdamW

from densevit.backbones.vit import VIT_SIZES, ViT
from densevit.engine.data import DataPreprocessor
from densevit.heads.dpt import DPT_SIZES
from densevit.models.depth import DepthEstimator

with read_base():
    from .._base_.datasets.nyu_depth import *
    from .._base_.default_runtime import *
    from .._base_.schedules.nyu_24ep import *

data_preprocessor = dict(type=DataPreprocessor, size_divisor=32)

# size tables: mmengine hands a config the names it imports as placeholders; .build() returns the table
model = dict(
    type=DepthEstimator,
    backbone=dict(
        type=ViT,
        **VIT_SIZES.build()["base"],
        img_size=592,
        pretrain_img_size=592,  # DINOv2's 37x37 position grid at patch 16, resized at every forward
        layer_scale_init=1.0,  # DINOv2 blocks carry layer scale
        drop_path_rate=0.1,
        out_indices=(2, 5, 8, 11),
        pretrained="checkpoints/dinov2_vitb14_pretrain.pth",  # patch kernel resized 14 -> 16 on load
    ),
    **DPT_SIZES.build()["base"],  # reassemble channels and head width
    min_depth=min_depth,
    max_depth=max_depth,
    silog_weight=10.0,
    variance_focus=0.85,
    flip_test=True,
)

# AdamW; layer-wise lr decay over the ViT blocks stands in for the reference's backbone lr x 0.1
optimizer = dict(type=AdamW, lr=1e-4, betas=(0.9, 0.999), weight_decay=0.01, layer_decay=0.9)
default_hooks.checkpoint.update(interval=3030, save_best="abs_rel", rule="less")  # at every validation

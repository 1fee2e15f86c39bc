"""DPT on ViT-CoMer-B (DINOv2 init, segmentation variant), NYUv2: the plain-ViT recipe with the adapter's maps.

The adapter's four 768-channel maps at strides 4/8/16/32 feed DPT's fusion directly (no reassemble resampling).
"""

from mmengine.config import read_base

with read_base():
    from .dpt_vit_b_nyu import *

from densevit.adapters.vit_comer import build_vit_comer

model.backbone = dict(
    type=build_vit_comer,
    size="base",
    task="segmentation",  # dense per-pixel output: level i gets the ViT features after interaction i
    pretrain_img_size=592,  # DINOv2's 37x37 position grid at patch 16
    pretrained="checkpoints/dinov2_vitb14_pretrain.pth",
)

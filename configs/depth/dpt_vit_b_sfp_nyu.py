"""DPT on ViTDet's simple feature pyramid over ViT-B (DINOv2 init), NYUv2: the plain-ViT recipe with pyramid maps.

The pyramid's stride 4/8/16/32 maps feed DPT's fusion directly (reassemble projects them, no resampling).
"""

from mmengine.config import read_base

from densevit.adapters.simple_pyramid import SimpleFeaturePyramid

with read_base():
    from .dpt_vit_b_nyu import *

model.backbone = dict(
    type=SimpleFeaturePyramid,
    backbone=dict(model.backbone, out_indices=(11,)),  # the pyramid is built from the last block's stride-16 map
    out_channels=256,
    scale_factors=(4.0, 2.0, 1.0, 0.5),
    top_block=False,  # DPT takes exactly four levels
)

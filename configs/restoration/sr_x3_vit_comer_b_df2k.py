"""Classical x3 super-resolution on ViT-CoMer-B (DeiT-B init), DF2K: sr_x3_vit_b_sfp_df2k.py with the adapter's maps."""

from mmengine.config import read_base

with read_base():
    from .sr_x3_vit_b_sfp_df2k import *

from densevit.adapters.vit_comer import build_vit_comer

model.backbone = dict(type=build_vit_comer, size="base", task="segmentation",
                      pretrained="checkpoints/deit_base_patch16_224-b5f2ef4d.pth")
model.update(max_stride=32)  # all four levels, so every adapter parameter trains

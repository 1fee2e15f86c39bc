"""Blind Gaussian colour denoising on ViT-CoMer-B (DeiT-B init, per-interaction features): the data, recipe and
tests of denoise_vit_b_sfp_blind.py with the adapter's four 768-channel maps (strides 4-32) in the decoder."""

from mmengine.config import read_base

with read_base():
    from .denoise_vit_b_sfp_blind import *

from densevit.adapters.vit_comer import build_vit_comer

model.backbone = dict(type=build_vit_comer, size="base", task="segmentation",
                      pretrained="checkpoints/deit_base_patch16_224-b5f2ef4d.pth")
model.update(max_stride=32)  # all four levels, so every adapter parameter trains

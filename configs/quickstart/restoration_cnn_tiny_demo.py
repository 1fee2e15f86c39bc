"""Calibration baseline for the restoration quickstart: a plain small CNN (timm's ResNet-10-T to stride 16, 1.25 M
parameters against the hybrid ViT's 0.60 M; from scratch) in place of the ViT, under the same decoder (full-resolution
branch, global residual: DnCNN-style residual learning), data and schedule, so the ViT's figure can be read against
what a CNN reaches in the same time: 38.05 dB / 0.9541 in 7 min 50 s on 2 cores, where the ViT reaches 37.83 / 0.9529
in 7 min 17 s (docs/experiments.md).
"""

from mmengine.config import read_base

from densevit.backbones.timm_backbone import TimmBackbone

with read_base():
    from .restoration_hybrid_vit_tiny_demo import *

model.backbone = dict(type=TimmBackbone, model_name="resnet10t", out_indices=(0, 1, 2, 3))  # strides 2, 4, 8, 16

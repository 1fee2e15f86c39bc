"""Calibration baseline for the pose quickstart: a plain small CNN (timm's ResNet-10-T to stride 16, 1.3 M parameters
with the head, 0.53 GFLOPs a 128x96 crop against the hybrid ViT's 0.25; from scratch) under the same pyramid heatmap
head, data and schedule, so the ViT's figure can be read against what a CNN of its size reaches: OKS AP 76.3 (AP50
93.0, AR 79.1) in 11 min 54 s on 2 cores, where the ViT reached 70.6 in 9 min 4 s the same day (docs/experiments.md).
"""

from mmengine.config import read_base

from densevit.backbones.timm_backbone import TimmBackbone

with read_base():
    from .topdown_pose_hybrid_vit_tiny_demo import *

model.backbone = dict(type=TimmBackbone, model_name="resnet10t", out_indices=(0, 1, 2, 3))  # strides 2, 4, 8, 16
model.head.in_channels = (64, 64, 128, 256)

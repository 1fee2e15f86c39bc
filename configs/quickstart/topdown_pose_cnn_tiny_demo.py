"""Calibration baseline for the pose quickstart: a plain small CNN (timm's ResNet-10-T to stride 16, 1.2 M
parameters, its 0.45 GFLOPs a 128x96 crop against the hybrid ViT's 0.17; from scratch) under the same pyramid heatmap
head, data and schedule, so the ViT's figure can be read against what a CNN of its size reaches.
"""

from mmengine.config import read_base

from densevit.backbones.timm_backbone import TimmBackbone

with read_base():
    from .topdown_pose_hybrid_vit_tiny_demo import *

model.backbone = dict(type=TimmBackbone, model_name="resnet10t", out_indices=(0, 1, 2, 3))  # strides 2, 4, 8, 16
model.head.in_channels = (64, 64, 128, 256)

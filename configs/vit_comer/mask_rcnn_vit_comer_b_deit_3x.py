"""Mask R-CNN + ViT-CoMer-B (DeiT-B init), COCO, 3x multi-scale (paper: 50.2 box / 44.0 mask AP)."""

from mmengine.config import read_base

with read_base():
    from .mask_rcnn_vit_comer_s_deit_3x import *

model.backbone.backbone.update(size="base", pretrained="checkpoints/deit_base_patch16_224-b5f2ef4d.pth")

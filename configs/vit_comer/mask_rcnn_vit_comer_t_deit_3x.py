"""Mask R-CNN + ViT-CoMer-T (DeiT-T init), COCO, 3x multi-scale (paper: 47.1 box / 41.5 mask AP)."""

from mmengine.config import read_base

with read_base():
    from .mask_rcnn_vit_comer_s_deit_3x import *

model.backbone.backbone.update(size="tiny", pretrained="checkpoints/deit_tiny_patch16_224-a1311bcf.pth")

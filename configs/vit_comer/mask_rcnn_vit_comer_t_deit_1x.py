"""Mask R-CNN + ViT-CoMer-T (DeiT-T init), COCO, 1x (paper: 42.1 box / 38.0 mask AP): the S recipe."""

from mmengine.config import read_base

with read_base():
    from .mask_rcnn_vit_comer_s_deit_1x import *

model.backbone.backbone.update(size="tiny", pretrained="checkpoints/deit_tiny_patch16_224-a1311bcf.pth")

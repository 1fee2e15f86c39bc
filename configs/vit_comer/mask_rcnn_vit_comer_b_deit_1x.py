"""Mask R-CNN + ViT-CoMer-B (DeiT-B init), COCO, 1x (paper: 47.6 box / 41.8 mask AP): the S recipe."""

from mmengine.config import read_base

with read_base():
    from .mask_rcnn_vit_comer_s_deit_1x import *

model.backbone.backbone.update(size="base", pretrained="checkpoints/deit_base_patch16_224-b5f2ef4d.pth")

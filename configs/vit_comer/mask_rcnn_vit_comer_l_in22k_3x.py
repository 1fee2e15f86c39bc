"""Mask R-CNN + ViT-CoMer-L (ImageNet-22k supervised ViT-L/16 init), COCO, 3x multi-scale (paper: 52.9 / 46.4)."""

from mmengine.config import read_base

with read_base():
    from .mask_rcnn_vit_comer_s_deit_3x import *

model.backbone.backbone.update(size="large", pretrained="checkpoints/vit_large_patch16_224.augreg_in21k.pth")

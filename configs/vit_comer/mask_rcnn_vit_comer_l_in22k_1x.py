"""Mask R-CNN + ViT-CoMer-L (ImageNet-22k supervised ViT-L/16 init), COCO, 1x (paper: 51.4 / 45.2 AP).

The S recipe with the L adapter: 16 deformable heads, value ratio 0.5, drop path 0.4, interactions after blocks
5, 11, 17, 23 (global attention there, 14x14 windows elsewhere).
"""

from mmengine.config import read_base

with read_base():
    from .mask_rcnn_vit_comer_s_deit_1x import *

model.backbone.backbone.update(size="large", pretrained="checkpoints/vit_large_patch16_224.augreg_in21k.pth")

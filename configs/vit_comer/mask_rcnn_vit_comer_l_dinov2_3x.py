"""Mask R-CNN + ViT-CoMer-L (DINOv2-L init), COCO, 3x (paper: 55.9 box / 49.1 mask AP); layer decay 0.8."""

from mmengine.config import read_base

with read_base():
    from .mask_rcnn_vit_comer_s_dinov2_3x import *

model.backbone.backbone.update(size="large", pretrained="checkpoints/dinov2_vitl14_pretrain.pth")
optimizer.update(layer_decay=0.8)

"""Mask R-CNN + ViT-CoMer-B (DINOv2-B init), COCO, 1x (paper: 52.0 box / 45.5 mask AP): layer decay 0.6."""

from mmengine.config import read_base

with read_base():
    from .mask_rcnn_vit_comer_s_dinov2_1x import *

model.backbone.backbone.update(size="base", pretrained="checkpoints/dinov2_vitb14_pretrain.pth")
optimizer.update(layer_decay=0.6)

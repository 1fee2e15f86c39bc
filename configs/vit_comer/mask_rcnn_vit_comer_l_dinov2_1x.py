"""Mask R-CNN + ViT-CoMer-L (DINOv2-L init), COCO, 1x (paper: 53.4 box / 46.8 mask AP).

The reference publishes no L DINOv2 config; layer decay 0.8 is ViTDet's value for ViT-L (ViTDet, Li et al. 2022;
detectron2 projects/ViTDet).
"""

from mmengine.config import read_base

with read_base():
    from .mask_rcnn_vit_comer_s_dinov2_1x import *

model.backbone.backbone.update(size="large", pretrained="checkpoints/dinov2_vitl14_pretrain.pth")
optimizer.update(layer_decay=0.8)

"""ViTDet Mask R-CNN, ViT-L (MAE init): the ViT-B recipe with the L backbone (drop path 0.4), layer decay 0.8."""

from mmengine.config import read_base

from densevit.backbones.vit import VITDET_SIZES

with read_base():
    from .mask_rcnn_vit_b_100ep import *

model.backbone.backbone.update(VITDET_SIZES.build()["large"], pretrained="checkpoints/mae_pretrain_vit_large.pth")
optimizer.update(layer_decay=0.8)

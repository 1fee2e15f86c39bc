"""ViTDet Mask R-CNN, ViT-H (MAE init): the ViT-B recipe with the H backbone (drop path 0.5), layer decay 0.9."""

from mmengine.config import read_base

from densevit.backbones.vit import VITDET_SIZES

with read_base():
    from .mask_rcnn_vit_b_100ep import *

model.backbone.backbone.update(VITDET_SIZES.build()["huge"],
                               pretrained="checkpoints/mae_pretrain_vit_huge_p14to16.pth")
optimizer.update(layer_decay=0.9)

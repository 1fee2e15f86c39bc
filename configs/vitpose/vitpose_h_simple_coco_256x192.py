"""ViTPose-H, simple decoder, COCO 256x192: the ViTPose-B recipe, huge backbone, its drop path and layer decay."""

from mmengine.config import read_base

from densevit.backbones.vitpose import VITPOSE_LAYER_DECAY, VITPOSE_SIZES

with read_base():
    from .vitpose_b_simple_coco_256x192 import *

size = VITPOSE_SIZES.build()["huge"]
model.backbone.update(size, pretrained="checkpoints/mae_pretrain_vit_huge.pth")
model.head.update(in_channels=size["embed_dim"])
optimizer.update(layer_decay=VITPOSE_LAYER_DECAY.build()["huge"])

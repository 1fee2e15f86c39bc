"""STViT-R on a ViTDet-style ViT-S (DeiT-S init): the ViT-B STViT-R recipe at the ViT-S width."""

from mmengine.config import read_base

from densevit.backbones.vit import VIT_SIZES

with read_base():
    from .mask_rcnn_stvit_r_vit_b_100ep import *

model.backbone.backbone.vit.update(
    VIT_SIZES.build()["small"],
    pretrained="checkpoints/deit_small_patch16_224.pth",  # timm / DeiT keys, converted on load
)

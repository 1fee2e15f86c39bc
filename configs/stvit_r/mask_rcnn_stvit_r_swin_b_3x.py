"""STViT-R-Swin-B Mask R-CNN with FPN: the Swin-S recipe with the B backbone and drop path 0.3 (as released)."""

from mmengine.config import read_base

from densevit.backbones.swin_stvit_r import STVIT_R_SWIN_SIZES

with read_base():
    from .mask_rcnn_stvit_r_swin_s_3x import *

model.backbone.backbone.update(STVIT_R_SWIN_SIZES.build()["base"], pretrained="checkpoints/STViT-R-Swin-B.pth")

"""STViT-R-Swin-B Mask R-CNN with FPN: the Swin-S recipe with the B backbone and drop path 0.3 (as released)."""

from mmengine.config import read_base

with read_base():
    from .mask_rcnn_stvit_r_swin_s_3x import *

model.backbone.backbone.update(
    embed_dim=128,
    num_heads=(4, 8, 16, 32),
    drop_path_rate=0.3,
    pretrained="checkpoints/STViT-R-Swin-B.pth",
)

"""ViTDet Mask R-CNN, ViT-H (MAE init): the ViT-B recipe with the H backbone, drop path 0.5, layer decay 0.9."""

from mmengine.config import read_base

with read_base():
    from .mask_rcnn_vit_b_100ep import *

model.backbone.backbone.update(
    embed_dim=1280,
    depth=32,
    num_heads=16,
    drop_path_rate=0.5,
    window_block_indexes=[i for i in range(32) if i not in (7, 15, 23, 31)],
    pretrained="checkpoints/mae_pretrain_vit_huge_p14to16.pth",
)
optimizer.update(layer_decay=0.9)

"""ViTDet Mask R-CNN, ViT-L (MAE init): the ViT-B recipe with the L backbone, drop path 0.4, layer decay 0.8."""

from mmengine.config import read_base

with read_base():
    from .mask_rcnn_vit_b_100ep import *

model.backbone.backbone.update(
    embed_dim=1024,
    depth=24,
    num_heads=16,
    drop_path_rate=0.4,
    window_block_indexes=[i for i in range(24) if i not in (5, 11, 17, 23)],
    pretrained="checkpoints/mae_pretrain_vit_large.pth",
)
optimizer.update(layer_decay=0.8)

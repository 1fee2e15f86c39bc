"""UperNet on ViT-CoMer-B (DeiT-B init), ADE20K, 160k iterations: lr 6e-5, layer decay 0.9 (48.8 mIoU)."""

from mmengine.config import read_base

from densevit.adapters.vit_comer import VIT_COMER_SIZES

with read_base():
    from .upernet_vit_comer_t_ade20k_160k import *

embed_dim = VIT_COMER_SIZES.build()["base"]["embed_dim"]
model.backbone.update(size="base", pretrained="checkpoints/deit_base_patch16_224-b5f2ef4d.pth")
model.decode_head.update(in_channels=(embed_dim,) * 4)
model.aux_head.update(in_channels=embed_dim)
optimizer.update(lr=6e-5, layer_decay=0.9)

"""UperNet on ViT-CoMer-S (DeiT-S init), ADE20K, 160k iterations: the T recipe at lr 6e-5 (46.5 mIoU)."""

from mmengine.config import read_base

from densevit.adapters.vit_comer import VIT_COMER_SIZES

with read_base():
    from .upernet_vit_comer_t_ade20k_160k import *

embed_dim = VIT_COMER_SIZES.build()["small"]["embed_dim"]
model.backbone.update(size="small", pretrained="checkpoints/deit_small_patch16_224-cd65a155.pth")
model.decode_head.update(in_channels=(embed_dim,) * 4)
model.aux_head.update(in_channels=embed_dim)
optimizer.update(lr=6e-5, layer_decay=0.95)

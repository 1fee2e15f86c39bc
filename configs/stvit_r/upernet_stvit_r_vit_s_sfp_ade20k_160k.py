"""UperNet on STViT-R over a ViTDet-style ViT-S (DeiT-S init) with the simple feature pyramid, ADE20K, 160k iterations.

The ViT-B STViT-R config at the ViT-S width. With no published STViT-R segmentation recipe, the optimiser is
ViT-CoMer-S's ADE20K recipe for DeiT-S: AdamW lr 6e-5, weight decay 0.01, layer decay 0.95, poly lr
after 1500 warm-up iterations.
"""

from mmengine.config import read_base

from densevit.backbones.vit import VIT_SIZES

with read_base():
    from .upernet_stvit_r_vit_b_sfp_ade20k_160k import *

model.backbone.backbone.vit.update(
    VIT_SIZES.build()["small"],
    pretrained="checkpoints/deit_small_patch16_224.pth",  # timm / DeiT keys, converted on load
)
optimizer.update(lr=6e-5, weight_decay=0.01, layer_decay=0.95)

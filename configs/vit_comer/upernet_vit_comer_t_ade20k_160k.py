"""UperNet on ViT-CoMer-T (DeiT-T init), ADE20K, 160k iterations, 512 crop: the paper's recipe (43.5 mIoU).

AdamW lr 12e-5, weight decay 0.01, layer decay 0.95, poly lr after 1500 warm-up iterations, batch 16, slide test
512 / 341 (ViT-CoMer's ADE20K configs). Data, evaluation and schedule come from the plain-ViT UperNet config; the
adapter's four
192-channel maps at strides 4/8/16/32 feed UperNet, the stride-16 one the auxiliary FCN head.
"""

from mmengine.config import read_base

from densevit.adapters.vit_comer import VIT_COMER_SIZES, build_vit_comer

with read_base():
    from ..upernet.upernet_vit_b_sfp_ade20k_160k import *

# size tables: mmengine hands a config the names it imports as placeholders; .build() returns the table
embed_dim = VIT_COMER_SIZES.build()["tiny"]["embed_dim"]
model.backbone = dict(
    type=build_vit_comer,
    size="tiny",
    task="segmentation",  # level i gets the ViT features after interaction i
    pretrained="checkpoints/deit_tiny_patch16_224-a1311bcf.pth",
)
model.decode_head.update(in_channels=(embed_dim,) * 4)
model.aux_head.update(in_channels=embed_dim)
optimizer.update(lr=12e-5, weight_decay=0.01, layer_decay=0.95)

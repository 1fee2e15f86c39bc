"""Top-down pose on ViT-CoMer-B, COCO 256x192: the ViTPose-B recipe (MAE init of ViTPose's ViT, layer decay 0.75,
210 epochs); ViT-CoMer's four maps (segmentation layout: level i after interaction i) are fused at stride 4.
"""

from mmengine.config import read_base

from densevit.adapters.vit_comer import VIT_COMER_SIZES, ViTCoMer
from densevit.heads.pose import PyramidPoseHead

with read_base():
    from .vitpose_b_classic_coco_256x192 import *

comer = VIT_COMER_SIZES.build()["base"]
model.backbone = dict(
    type=ViTCoMer,
    backbone=dict(model.backbone, last_norm=False),  # the adapter reads the blocks; its own norms follow them
    deform_num_heads=comer["deform_num_heads"],
    deform_ratio=comer["deform_ratio"],
    drop_path_rate=comer["drop_path_rate"],
    mrfp_ratio=comer["seg_mrfp_ratio"],
    vit_feature="interaction",
)
model.head = dict(type=PyramidPoseHead, in_channels=(size["embed_dim"],) * 4, strides=(4, 8, 16, 32),
                  num_keypoints=num_keypoints, fuse_strides=(4, 8, 16, 32))

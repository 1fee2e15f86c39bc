"""Quickstart: the tiny demo Mask R-CNN with ViT-CoMer in place of the simple feature pyramid, on a CPU.

The same 4-block ViT (192-d, from scratch) with one ViT-CoMer interaction per block (detection variant: MRFP
hidden 0.5 D, the final ViT tokens added to every level), its four 192-channel maps through an FPN to the slim
R-CNN heads of ``mask_rcnn_vit_tiny_demo.py``. Generate the data first: python -m densevit.datasets.demo data/demo
"""

from mmengine.config import read_base

from densevit.adapters.fpn import FPN
from densevit.adapters.vit_comer import ViTCoMer

with read_base():
    from .mask_rcnn_vit_tiny_demo import *

model.backbone = dict(
    type=FPN,
    backbone=dict(
        type=ViTCoMer,
        backbone=model.backbone.backbone,
        interaction_indexes=((0, 0), (1, 1), (2, 2), (3, 3)),
        deform_num_heads=6,
        mrfp_ratio=0.5,
        vit_feature="final",
    ),
    out_channels=width,
    extra_pool=True,
)

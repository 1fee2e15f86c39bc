"""Quickstart: the tiny demo Mask R-CNN with ViT-CoMer in place of the simple feature pyramid, on a CPU.

The same 4-block ViT (192-d, from scratch) with two ViT-CoMer interactions of two blocks each (detection
variant: MRFP hidden 0.5 D, the final ViT tokens added to every level; a 32-channel spatial prior stem), its four
192-channel maps through an FPN to the slim R-CNN heads of ``mask_rcnn_vit_tiny_demo.py``. An iteration costs
about twice the plain ViT's on a 2-core CPU, so the schedule is shorter.
Generate the data first: python -m densevit.datasets.demo data/demo
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
        backbone=plain_vit,
        interaction_indexes=((0, 1), (2, 3)),
        deform_num_heads=6,
        mrfp_ratio=0.5,
        vit_feature="final",
        conv_inplane=32,
    ),
    out_channels=width,
    extra_pool=True,
)
# the FPN keeps all five levels (strides 4-64), so anchors and RoI pooling span them as in ViTDet
model.anchor_sizes = (16, 32, 64, 128, 256)
model.roi_levels = 4

max_iters = 240
param_scheduler[0].update(end=50)  # warm-up: 50 iterations instead of 100
param_scheduler[1].update(begin=50, end=max_iters, T_max=max_iters - 50)
train_cfg.update(max_iters=max_iters, val_interval=max_iters)

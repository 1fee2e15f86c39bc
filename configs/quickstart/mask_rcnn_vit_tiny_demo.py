"""Quickstart: a tiny ViTDet Mask R-CNN on a hybrid ViT, trained from scratch on the built-in demo shapes, on a CPU.

Generate the data first: python -m densevit.datasets.demo data/demo. Train in float32: under bf16 autocast on
the CPU this recipe learns far slower (docs/experiments.md).

The ViT has a convolutional stem (``HybridViT``, Xiao et al., 2021) whose stride-8 map joins the simple pyramid's
stride-8 level through a 1x1 lateral: far more accurate than the plain ViT's 16x16 patch projection in this
budget, for a third more time a step (docs/experiments.md). The pyramid and the R-CNN heads are slimmed for a
2-core CPU: the simple pyramid starts at stride 8 (the stride-4 level would cost 40% of a step, and the demo's
smallest objects, 16 px, still span 2 pixels of p3), a 1-conv RPN head, a box head of one fc layer on the
128-wide RoI features, a 64-wide 2-conv mask head, fewer proposals and RoIAlign with 2x2 samples per bin.
The STViT-R and ViT-CoMer quickstarts import this config and put their adapter on ``plain_vit``.
"""

from mmengine.config import read_base
from mmengine.optim import CosineAnnealingLR, LinearLR
from torch.optim import AdamW

from densevit.adapters.simple_pyramid import SimpleFeaturePyramid
from densevit.backbones.hybrid_vit import HybridViT
from densevit.backbones.vit import ViT
from densevit.engine.data import DataPreprocessor
from densevit.heads.rcnn import box_head, box_predictor, mask_head, mask_predictor, rpn_head
from densevit.models.mask_rcnn import MaskRCNN

with read_base():
    from .._base_.datasets.demo_instances import *
    from .._base_.default_runtime import *

width = 128
mask_width = 64

# the plain 4-block ViT that the STViT-R and ViT-CoMer quickstarts put their adapters on
plain_vit = dict(type=ViT, img_size=image_size, embed_dim=192, depth=4, num_heads=3)

data_preprocessor = dict(type=DataPreprocessor, pad_size=image_size)

model = dict(
    type=MaskRCNN,
    num_classes=num_classes,
    backbone=dict(
        type=SimpleFeaturePyramid,
        backbone=dict(type=HybridViT, img_size=image_size, embed_dim=192, depth=4, num_heads=3, stem_out_indices=(2,)),
        out_channels=width,
        scale_factors=(2.0, 1.0, 0.5),
    ),
    anchor_sizes=(16, 32, 64, 128),
    roi_levels=3,
    box_batch_size_per_image=64,
    rpn_pre_nms_top_n_train=500,
    rpn_post_nms_top_n_train=250,
    rpn_pre_nms_top_n_test=500,
    rpn_post_nms_top_n_test=200,
    roi_sampling_ratio=2,
    rpn_head_module=dict(type=rpn_head, in_channels=width, num_convs=1),
    box_head_module=dict(type=box_head, in_channels=width, conv_dim=width, num_convs=0, fc_dim=512),
    box_predictor_module=dict(type=box_predictor, in_channels=512, num_classes=num_classes),
    mask_head_module=dict(type=mask_head, in_channels=width, conv_dim=mask_width, num_convs=2),
    mask_predictor_module=dict(type=mask_predictor, in_channels=mask_width, conv_dim=mask_width,
                               num_classes=num_classes),
)

optimizer = dict(type=AdamW, lr=4e-4, weight_decay=0.05)
max_iters = 1000
param_scheduler = [
    dict(type=LinearLR, start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(type=CosineAnnealingLR, by_epoch=False, begin=100, end=max_iters, T_max=max_iters - 100, eta_min=4e-6),
]
train_cfg = dict(by_epoch=False, max_iters=max_iters, val_interval=max_iters)
default_hooks.checkpoint.update(interval=500, max_keep_ckpts=2)
default_hooks.logger.update(interval=25)

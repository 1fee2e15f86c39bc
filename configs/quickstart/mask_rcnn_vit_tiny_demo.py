"""Quickstart: a tiny ViTDet Mask R-CNN trained from scratch on the built-in demo shapes, on a CPU.

Generate the data first: python -m densevit.datasets.demo data/demo
"""

from mmengine.dataset import DefaultSampler, InfiniteSampler
from mmengine.hooks import CheckpointHook, LoggerHook
from mmengine.optim import CosineAnnealingLR, LinearLR
from torch.optim import AdamW

from densevit.adapters.simple_pyramid import SimpleFeaturePyramid
from densevit.backbones.vit import ViT
from densevit.datasets.coco import CocoDetection
from densevit.datasets.transforms import detection_test_transforms, detection_train_transforms
from densevit.engine.data import DataPreprocessor
from densevit.evaluation.coco import CocoEvaluator
from densevit.models.mask_rcnn import MaskRCNN

data_root = "data/demo"
image_size = 256

model = dict(
    type=MaskRCNN,
    num_classes=5,
    data_preprocessor=dict(type=DataPreprocessor, pad_size=image_size),
    backbone=dict(
        type=SimpleFeaturePyramid,
        backbone=dict(type=ViT, img_size=image_size, embed_dim=192, depth=4, num_heads=3),
        out_channels=128,
        scale_factors=(4.0, 2.0, 1.0, 0.5),
    ),
    anchor_sizes=(16, 32, 64, 128, 256),
    box_batch_size_per_image=64,
    rpn_pre_nms_top_n_train=1000,
    rpn_post_nms_top_n_train=500,
    rpn_pre_nms_top_n_test=500,
    rpn_post_nms_top_n_test=300,
)

train_dataloader = dict(
    batch_size=8,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type=InfiniteSampler, shuffle=True),
    dataset=dict(
        type=CocoDetection,
        ann_file=f"{data_root}/annotations/instances_train.json",
        img_dir=f"{data_root}/train",
        transforms=dict(type=detection_train_transforms, size=image_size, scale_range=(0.8, 1.25)),
        train=True,
    ),
)
val_dataloader = dict(
    batch_size=8,
    num_workers=1,
    sampler=dict(type=DefaultSampler, shuffle=False),
    dataset=dict(
        type=CocoDetection,
        ann_file=f"{data_root}/annotations/instances_val.json",
        img_dir=f"{data_root}/val",
        transforms=dict(type=detection_test_transforms, size=image_size),
    ),
)
val_evaluator = dict(type=CocoEvaluator, ann_file=f"{data_root}/annotations/instances_val.json")
test_dataloader = val_dataloader
test_evaluator = val_evaluator

optimizer = dict(type=AdamW, lr=4e-4, weight_decay=0.05)
max_iters = 1500
param_scheduler = [
    dict(type=LinearLR, start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(type=CosineAnnealingLR, by_epoch=False, begin=100, end=max_iters, T_max=max_iters - 100, eta_min=4e-6),
]
train_cfg = dict(by_epoch=False, max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    checkpoint=dict(type=CheckpointHook, by_epoch=False, interval=500, max_keep_ckpts=2),
    logger=dict(type=LoggerHook, interval=25),
)
randomness = dict(seed=0)

"""ViTDet Mask R-CNN, ViT-B (MAE init), COCO, 100 epochs at batch 64, 1024 input (vitdet.md)."""

from mmengine.dataset import DefaultSampler, InfiniteSampler
from mmengine.hooks import CheckpointHook, LoggerHook
from mmengine.optim import LinearLR, MultiStepLR
from torch.optim import AdamW

from densevit.adapters.simple_pyramid import SimpleFeaturePyramid
from densevit.backbones.vit import ViT
from densevit.datasets.coco import CocoDetection
from densevit.datasets.transforms import detection_test_transforms, detection_train_transforms
from densevit.engine.data import DataPreprocessor
from densevit.evaluation.coco import CocoEvaluator
from densevit.models.mask_rcnn import MaskRCNN

data_root = "data/coco"
image_size = 1024

data_preprocessor = dict(type=DataPreprocessor, pad_size=image_size)

model = dict(
    type=MaskRCNN,
    num_classes=80,
    backbone=dict(
        type=SimpleFeaturePyramid,
        backbone=dict(
            type=ViT,
            img_size=image_size,  # sizes the global blocks' relative-position tables
            pretrain_img_size=224,  # the MAE position table is 14x14, resized at every forward
            embed_dim=768,
            depth=12,
            num_heads=12,
            drop_path_rate=0.1,
            window_size=14,
            window_block_indexes=[0, 1, 3, 4, 6, 7, 9, 10],  # global attention in blocks 2, 5, 8, 11
            use_rel_pos=True,
            pretrained="checkpoints/mae_pretrain_vit_base.pth",
        ),
        out_channels=256,
        scale_factors=(4.0, 2.0, 1.0, 0.5),
    ),
)

train_dataloader = dict(
    batch_size=8,  # per GPU; 8 GPUs give the paper's batch of 64
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type=InfiniteSampler, shuffle=True),
    dataset=dict(
        type=CocoDetection,
        ann_file=f"{data_root}/annotations/instances_train2017.json",
        img_dir=f"{data_root}/train2017",
        transforms=dict(type=detection_train_transforms, size=image_size, scale_range=(0.1, 2.0)),
        train=True,
    ),
)
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    sampler=dict(type=DefaultSampler, shuffle=False),
    dataset=dict(
        type=CocoDetection,
        ann_file=f"{data_root}/annotations/instances_val2017.json",
        img_dir=f"{data_root}/val2017",
        transforms=dict(type=detection_test_transforms, size=image_size),
    ),
)
val_evaluator = dict(type=CocoEvaluator, ann_file=f"{data_root}/annotations/instances_val2017.json")
test_dataloader = val_dataloader
test_evaluator = val_evaluator

# AdamW with ViTDet's layer-wise lr decay; no weight decay on norms and pos_embed
optimizer = dict(type=AdamW, lr=1e-4, betas=(0.9, 0.999), weight_decay=0.1, layer_decay=0.7)
max_iters = 184375
param_scheduler = [
    dict(type=LinearLR, start_factor=0.001, by_epoch=False, begin=0, end=250),
    dict(type=MultiStepLR, by_epoch=False, milestones=[163889, 177546], gamma=0.1),  # 88.9% and 96.3%
]
train_cfg = dict(by_epoch=False, max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    checkpoint=dict(type=CheckpointHook, by_epoch=False, interval=5000, max_keep_ckpts=3),
    logger=dict(type=LoggerHook, interval=20),
)
randomness = dict(seed=0)

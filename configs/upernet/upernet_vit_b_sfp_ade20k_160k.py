"""UperNet on a ViTDet-style plain ViT-B (MAE init) with the simple feature pyramid, ADE20K, 160k iterations.

Batch 16 (2 per GPU x 8), 512x512 crops; MAE's ADE20K fine-tuning recipe: AdamW lr 1e-4, weight decay 0.05,
layer decay 0.65, drop path 0.1, poly lr after 1500 linear warm-up iterations. Test: short side 512 (long side
<= 2048), slide windows 512 / stride 341, logits resized to the original image before the argmax (tasks.md).
This file holds the ADE20K data, evaluation and schedule that the ViT-CoMer configs import.
"""

from mmengine.dataset import DefaultSampler, InfiniteSampler
from mmengine.hooks import CheckpointHook, LoggerHook
from mmengine.optim import LinearLR, PolyLR
from torch.optim import AdamW

from densevit.adapters.simple_pyramid import SimpleFeaturePyramid
from densevit.backbones.vit import ViT
from densevit.datasets.ade20k import ADE20K, ADE20K_CLASSES
from densevit.datasets.seg_transforms import seg_train_transforms
from densevit.engine.data import DataPreprocessor
from densevit.evaluation.segmentation import SegmentationEvaluator
from densevit.heads.seg_heads import FCNHead
from densevit.heads.uper import UPerHead
from densevit.models.segmentor import Segmentor

data_root = "data/ade/ADEChallengeData2016"
crop_size = 512
num_classes = 150

data_preprocessor = dict(type=DataPreprocessor, size_divisor=32)

model = dict(
    type=Segmentor,
    backbone=dict(
        type=SimpleFeaturePyramid,
        backbone=dict(
            type=ViT,
            img_size=crop_size,  # sizes the global blocks' relative-position tables (32x32 tokens)
            pretrain_img_size=224,
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
        top_block=False,  # UperNet uses strides 4-32
    ),
    decode_head=dict(type=UPerHead, in_channels=(256,) * 4, num_classes=num_classes, channels=512),
    aux_head=dict(type=FCNHead, in_channels=256, num_classes=num_classes, channels=256),
    aux_stride=16,
    aux_weight=0.4,
    test_mode="slide",
    crop_size=crop_size,
    crop_stride=341,
    test_scale=(2048, 512),
)

train_dataloader = dict(
    batch_size=2,  # per GPU; 8 GPUs give the batch of 16
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type=InfiniteSampler, shuffle=True),
    dataset=dict(
        type=ADE20K,
        data_root=data_root,
        split="training",
        transforms=dict(type=seg_train_transforms, scale=(2048, 512), ratio_range=(0.5, 2.0), crop_size=crop_size,
                        cat_max_ratio=0.75),
    ),
)
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    sampler=dict(type=DefaultSampler, shuffle=False),
    dataset=dict(type=ADE20K, data_root=data_root, split="validation"),  # labels stay at the original size
)
val_evaluator = dict(type=SegmentationEvaluator, class_names=ADE20K_CLASSES)
test_dataloader = val_dataloader
test_evaluator = val_evaluator

# AdamW with layer-wise lr decay over the ViT blocks; no weight decay on norms and position tables
optimizer = dict(type=AdamW, lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05, layer_decay=0.65)
max_iters = 160000
warmup_iters = 1500
param_scheduler = [
    dict(type=LinearLR, start_factor=1e-6, by_epoch=False, begin=0, end=warmup_iters),
    dict(type=PolyLR, power=1.0, eta_min=0.0, by_epoch=False, begin=warmup_iters, end=max_iters),
]
train_cfg = dict(by_epoch=False, max_iters=max_iters, val_interval=16000)
default_hooks = dict(
    checkpoint=dict(type=CheckpointHook, by_epoch=False, interval=16000, max_keep_ckpts=2),
    logger=dict(type=LoggerHook, interval=50),
)
randomness = dict(seed=0)

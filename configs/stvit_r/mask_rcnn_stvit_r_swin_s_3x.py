"""STViT-R-Swin-S Mask R-CNN with FPN, COCO, the released 3x recipe (stvit_r.md).

Backbone as released (conv stem, stage 3 as three dumbbell units, released padding mask), initialised from the
released ImageNet checkpoint. Recipe: AdamW lr 1e-4, weight decay 0.05 (none on norms and relative position
tables), drop path 0.2, 36 epochs at batch 16 with lr x0.1 after epochs 27 and 33, 500 warm-up iterations.
Differences from the release: Mask R-CNN heads of ViTDet (4 conv + 1 fc box head) instead of the 3-stage
Cascade heads (those are in cascade_mask_rcnn_stvit_r_swin_s_3x.py), and multi-scale training by the longest side
in [640, 1066] (the release's short side in [480, 800] for 4:3 images; its random-crop branch is left out).
"""

from mmengine.dataset import DefaultSampler, InfiniteSampler
from mmengine.hooks import CheckpointHook, LoggerHook
from mmengine.optim import LinearLR, MultiStepLR
from torch.optim import AdamW

from densevit.adapters.fpn import FPN
from densevit.backbones.swin_stvit_r import SwinSTViTR
from densevit.datasets.coco import CocoDetection
from densevit.datasets.transforms import detection_test_transforms, detection_train_transforms
from densevit.engine.data import DataPreprocessor
from densevit.evaluation.coco import CocoEvaluator
from densevit.models.mask_rcnn import MaskRCNN

data_root = "data/coco"

data_preprocessor = dict(type=DataPreprocessor, size_divisor=32)

model = dict(
    type=MaskRCNN,
    num_classes=80,
    backbone=dict(
        type=FPN,
        backbone=dict(
            type=SwinSTViTR,
            embed_dim=96,
            depths=(2, 2, 18, 2),
            num_heads=(3, 6, 12, 24),
            window_size=7,
            drop_path_rate=0.2,
            # stage 3: (image, init 14, refine 21, local, global, recover 27) x 3, windows pooled 7x7 -> 3x3
            pooled=3,
            init_kernel=14,
            refine_kernel=21,
            recover_kernel=27,
            layer_scale_init=1e-5,
            pad_mask="released",
            pretrained="checkpoints/STViT-R-Swin-S.pth",
        ),
        out_channels=256,
        extra_pool=True,
    ),
)

train_dataloader = dict(
    batch_size=2,  # per GPU; 8 GPUs give the release's batch of 16
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type=InfiniteSampler, shuffle=True),
    dataset=dict(
        type=CocoDetection,
        ann_file=f"{data_root}/annotations/instances_train2017.json",
        img_dir=f"{data_root}/train2017",
        # longest side U[640, 1066] (= short side 480-800 on 4:3 images); the 1333 crop never cuts
        transforms=dict(type=detection_train_transforms, size=1333, scale_range=(0.48, 0.8)),
        train=True,
    ),
)
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    sampler=dict(type=DefaultSampler, shuffle=False),
    dataset=dict(
        type=CocoDetection,
        ann_file=f"{data_root}/annotations/instances_val2017.json",
        img_dir=f"{data_root}/val2017",
        transforms=dict(type=detection_test_transforms, size=1067),  # 1067x800 for 4:3 images, as released
    ),
)
val_evaluator = dict(type=CocoEvaluator, ann_file=f"{data_root}/annotations/instances_val2017.json")
test_dataloader = val_dataloader
test_evaluator = val_evaluator

optimizer = dict(
    type=AdamW, lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05, no_decay_names=("relative_position_bias_table",)
)
iters_per_epoch = 7330  # 117,266 COCO train images with annotations / 16
max_iters = 36 * iters_per_epoch
param_scheduler = [
    dict(type=LinearLR, start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type=MultiStepLR, by_epoch=False, milestones=[27 * iters_per_epoch, 33 * iters_per_epoch], gamma=0.1),
]
train_cfg = dict(by_epoch=False, max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    checkpoint=dict(type=CheckpointHook, by_epoch=False, interval=iters_per_epoch, max_keep_ckpts=3),
    logger=dict(type=LoggerHook, interval=50),
)
randomness = dict(seed=0)

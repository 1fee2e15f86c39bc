"""DPT on a plain ViT-B (DINOv2 init, hooks after blocks 2, 5, 8, 11), NYUv2 (BTS split), 24 epochs at batch 16.

Reference recipe: Monocular-Depth-Estimation-Toolbox DPT / Depth Anything metric head (tasks.md). Layout:
data/nyu/<scene>/rgb_XXXXX.jpg, data/nyu/<scene>/sync_depth_XXXXX.png, data/nyu/nyu_{train,test}.txt.
"""

from mmengine.dataset import DefaultSampler, InfiniteSampler
from mmengine.hooks import CheckpointHook, LoggerHook
from mmengine.optim import CosineAnnealingLR, LinearLR
from torch.optim import AdamW

from densevit.backbones.vit import ViT
from densevit.datasets.depth_transforms import depth_train_transforms
from densevit.datasets.nyu import NYUDepth
from densevit.engine.data import DataPreprocessor
from densevit.evaluation.depth import DepthEvaluator
from densevit.models.depth import DepthEstimator

data_root = "data/nyu"
min_depth, max_depth = 1e-3, 10.0

data_preprocessor = dict(type=DataPreprocessor, size_divisor=32)

model = dict(
    type=DepthEstimator,
    backbone=dict(
        type=ViT,
        img_size=592,
        pretrain_img_size=592,  # DINOv2's 37x37 position grid at patch 16, resized at every forward
        embed_dim=768,
        depth=12,
        num_heads=12,
        layer_scale_init=1.0,  # DINOv2 blocks carry layer scale
        drop_path_rate=0.1,
        out_indices=(2, 5, 8, 11),
        pretrained="checkpoints/dinov2_vitb14_pretrain.pth",  # patch kernel resized 14 -> 16 on load
    ),
    reassemble_channels=(96, 192, 384, 768),  # DPT_SIZES["base"]
    features=128,
    min_depth=min_depth,
    max_depth=max_depth,
    silog_weight=10.0,
    variance_focus=0.85,
    flip_test=True,
)

train_dataloader = dict(
    batch_size=2,  # per GPU; 8 GPUs give the reference batch of 16
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type=InfiniteSampler, shuffle=True),
    dataset=dict(
        type=NYUDepth,
        data_root=data_root,
        split_file=f"{data_root}/nyu_train.txt",
        transforms=dict(type=depth_train_transforms, crop_size=(416, 544)),  # NYU crop, rotate, flip, colour
    ),
)
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    sampler=dict(type=DefaultSampler, shuffle=False),
    dataset=dict(type=NYUDepth, data_root=data_root, split_file=f"{data_root}/nyu_test.txt"),  # 654 at 480x640
)
val_evaluator = dict(type=DepthEvaluator, min_depth=min_depth, max_depth=max_depth, crop="eigen")
test_dataloader = val_dataloader
test_evaluator = val_evaluator

# AdamW; layer-wise lr decay over the ViT blocks stands in for the reference's backbone lr x 0.1
optimizer = dict(type=AdamW, lr=1e-4, betas=(0.9, 0.999), weight_decay=0.01, layer_decay=0.9)
max_iters = 36400  # 24 epochs of 24,231 images at batch 16
warmup_iters = 10900  # one-cycle style: 30% linear warm-up from lr / 25, then cosine decay
param_scheduler = [
    dict(type=LinearLR, start_factor=0.04, by_epoch=False, begin=0, end=warmup_iters),
    dict(type=CosineAnnealingLR, by_epoch=False, begin=warmup_iters, end=max_iters, T_max=max_iters - warmup_iters,
         eta_min=1e-8),
]
train_cfg = dict(by_epoch=False, max_iters=max_iters, val_interval=3030)  # about every 2 epochs
default_hooks = dict(
    checkpoint=dict(type=CheckpointHook, by_epoch=False, interval=3030, max_keep_ckpts=3, save_best="abs_rel",
                    rule="less"),
    logger=dict(type=LoggerHook, interval=50),
)
randomness = dict(seed=0)

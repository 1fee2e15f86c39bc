"""Blind Gaussian colour denoising (sigma ~ U[0, 50] per patch) on a plain ViT-B (MAE init) + simple pyramid.

Data (as Restormer): DFWB = DIV2K 800 + Flickr2K 2650 + WED 4744 + BSD400 clean images, noised on the fly
(float, unclipped); tests CBSD68, Kodak24, McMaster and Urban100 at sigma 15 / 25 / 50 with the papers' protocol
(``np.random.seed(0)`` before each image, noise on the RGB float array, unclipped), scored on RGB, no crop.
Layout: data/denoise/train/{DIV2K,Flickr2K,WaterlooED,BSD400}/*, data/denoise/test/{CBSD68,Kodak,McMaster,
Urban100}/*. Recipe after Restormer: L1, AdamW 3e-4 (0.9, 0.999), weight decay 1e-4, 300k iterations (flat
92k then cosine to 1e-6), batch 8 x 8 GPUs, flips and rotations, gradient clipping; fixed 128 crops instead
of Restormer's progressive 128-384 (a ViT-B on 8x8 tokens at the start). This file also holds the data and the
schedule the other denoising configs import. Restormer's published figures: configs/restoration/README.md.
"""

from mmengine.config import read_base
from mmengine.dataset import DefaultSampler
from mmengine.optim import CosineAnnealingLR, LinearLR
from torch.optim import AdamW
from torch.utils.data import ConcatDataset

from densevit.adapters.simple_pyramid import SimpleFeaturePyramid
from densevit.backbones.vit import VITDET_SIZES, ViT
from densevit.datasets.restoration import GaussianNoise, PairedImageDataset
from densevit.engine.data import DataPreprocessor
from densevit.engine.stream import ResumableInfiniteSampler
from densevit.evaluation.restoration import RestorationEvaluator
from densevit.models.restoration import ImageRestorer, l1_loss

with read_base():
    from .._base_.default_runtime import *

data_root = "data/denoise"
crop_size = 128
train_sigma = (0.0, 50.0)  # blind: drawn per patch
test_sigmas = (15, 25, 50)
train_sets = ("DIV2K", "Flickr2K", "WaterlooED", "BSD400")
test_sets = ("CBSD68", "Kodak", "McMaster", "Urban100")

data_preprocessor = dict(type=DataPreprocessor, size_divisor=1)  # the model reflect-pads to its stride itself

model = dict(
    type=ImageRestorer,
    backbone=dict(
        type=SimpleFeaturePyramid,
        # ViTDet-B (global attention in blocks 2, 5, 8, 11), its relative-position tables sized for the crop
        backbone=dict(VITDET_SIZES.build()["base"], type=ViT, img_size=crop_size,
                      pretrained="checkpoints/mae_pretrain_vit_base.pth"),
        out_channels=256,
        scale_factors=(4.0, 2.0, 1.0),  # the decoder takes strides 4, 8 and 16
        top_block=False,
    ),
    scale=1,
    channels=64,
    shallow_blocks=4,
    fuse_blocks=4,
    loss_fn=l1_loss,
    tile=None,  # tools/infer.py --tile 512 for large photos
)

train_dataloader = dict(
    batch_size=8,  # per GPU; 8 GPUs give Restormer's 64 at 128 px
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type=ResumableInfiniteSampler, shuffle=True),
    dataset=dict(
        type=ConcatDataset,
        datasets=[dict(type=PairedImageDataset, gt_dir=f"{data_root}/train/{name}",
                       degradations=[dict(type=GaussianNoise, sigma=train_sigma)], crop_size=crop_size, flip=True,
                       rot90=True, name=name) for name in train_sets],
    ),
)
test_dataloader = dict(
    batch_size=1,
    num_workers=2,
    sampler=dict(type=DefaultSampler, shuffle=False),
    dataset=dict(
        type=ConcatDataset,
        datasets=[dict(type=PairedImageDataset, gt_dir=f"{data_root}/test/{name}",
                       degradations=[dict(type=GaussianNoise, sigma=sigma)], seed=0, name=f"{name}_sigma{sigma}")
                  for sigma in test_sigmas for name in test_sets],
    ),
)
test_evaluator = dict(type=RestorationEvaluator, crop_border=0, test_y_channel=False)
val_dataloader = dict(test_dataloader, dataset=dict(type=PairedImageDataset, gt_dir=f"{data_root}/test/CBSD68",
                                                    degradations=[dict(type=GaussianNoise, sigma=25)], seed=0,
                                                    name="CBSD68_sigma25"))
val_evaluator = test_evaluator

optimizer = dict(type=AdamW, lr=3e-4, betas=(0.9, 0.999), weight_decay=1e-4, layer_decay=0.9)
clip_grad = dict(max_norm=0.01)  # Restormer clips the gradient norm at 0.01
max_iters = 300000
flat_iters = 92000
param_scheduler = [
    dict(type=LinearLR, start_factor=0.001, by_epoch=False, begin=0, end=1000),
    dict(type=CosineAnnealingLR, by_epoch=False, begin=flat_iters, end=max_iters, T_max=max_iters - flat_iters,
         eta_min=1e-6),
]
train_cfg = dict(by_epoch=False, max_iters=max_iters, val_interval=4000)
default_hooks.checkpoint.update(interval=4000, save_best="psnr", rule="greater")
default_hooks.logger.update(interval=100)

"""Single-image motion deblurring on GoPro with a plain ViT-B (MAE init) + simple pyramid.

Layout as distributed: data/GoPro/{train,test}/<sequence>/{sharp,blur}/*.png (2103 / 1111 pairs at 1280x720; use
``blur``, not ``blur_gamma``). Recipe after Restormer: L1, AdamW 3e-4, weight decay 1e-4, 300k iterations (flat
92k then cosine to 1e-6), batch 8 x 8 GPUs, flips and rotations, gradient clipping; fixed 256 crops (Restormer:
progressive 128-384 on pre-cropped patches). Scored on RGB uint8, no crop, with MATLAB's volume SSIM, the number
Restormer reports (32.92 / 0.961); the per-channel (BasicSR) SSIM of the same outputs is lower (0.9496 for
Restormer): README.md.
"""

from mmengine.config import read_base

with read_base():
    from .denoise_vit_b_sfp_blind import *

data_root = "data/GoPro"
crop_size = 256

model.backbone.backbone.update(img_size=crop_size)
train_dataloader.dataset = dict(type=PairedImageDataset, gt_dir=f"{data_root}/train/*/sharp",
                                lq_dir=f"{data_root}/train/*/blur", crop_size=crop_size, flip=True, rot90=True,
                                name="GoPro_train")
test_dataloader.dataset = dict(type=PairedImageDataset, gt_dir=f"{data_root}/test/*/sharp",
                               lq_dir=f"{data_root}/test/*/blur", name="GoPro")
test_evaluator.update(ssim_3d=True)
val_dataloader = test_dataloader
val_evaluator = test_evaluator

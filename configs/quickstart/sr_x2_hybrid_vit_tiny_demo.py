"""Quickstart: x2 super-resolution of the demo scenes (LR = MATLAB bicubic of the clean render) with a tiny hybrid
ViT + the restoration decoder (pixel-shuffle x2 output), on a CPU. Unlike SwinIR (500k iterations) the output adds
the bicubic-upsampled input (VDSR's global residual): trained from scratch for minutes, a model without it starts
from a blank image (7 dB after 20 iterations) instead of from bicubic quality.

Generate the data first: python -m densevit.datasets.demo data/demo --tasks restoration super_resolution
Trained on 64x64 LR crops (128x128 ground truth), scored on the 200 validation pairs as the SR papers score:
Y channel, crop_border = scale: 51.10 dB / 0.9970 in 7 min 58 s on 2 cores, where MATLAB bicubic upsampling of the
same LR images gives 44.65 dB / 0.9895 (tools/restoration_baselines.py --scale 2).
"""

from mmengine.config import read_base

with read_base():
    from .restoration_hybrid_vit_tiny_demo import *

scale = 2
lr_crop = 64

model.update(scale=scale, image_residual=True)
model.backbone.update(img_size=lr_crop)
train_dataloader.dataset.update(lq_dir=f"{data_root}/restoration/train/lq_x2", lq_name="{}x2", scale=scale,
                                crop_size=lr_crop * scale, name="demo_x2")
val_dataloader.dataset.update(lq_dir=f"{data_root}/restoration/val/lq_x2", lq_name="{}x2", scale=scale,
                              name="demo_x2")
val_evaluator = dict(type=RestorationEvaluator, crop_border=scale, test_y_channel=True)
test_dataloader = val_dataloader
test_evaluator = val_evaluator

# a step costs 0.19 s here (the output side runs at twice the size): 2,500 iterations keep it within 10 minutes
max_iters = 2500
param_scheduler[1].update(end=max_iters, T_max=max_iters - 50)
train_cfg.update(max_iters=max_iters, val_interval=max_iters)

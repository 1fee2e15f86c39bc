"""Classical x4 super-resolution on a plain ViT-B (MAE init) + simple pyramid, DF2K training, the five SR test sets.

Layout: data/SR/DF2K/{HR,LR_bicubic/X4} with DIV2K's 0001x4.png naming (DIV2K 800 + Flickr2K 2650, LR made by
MATLAB bicubic), data/SR/{Set5,Set14,B100,Urban100,Manga109}/{HR,LR_bicubic/X4}. Scored as the SR papers:
Y channel (BT.601, unrounded), crop_border = scale, per image then mean, per set. Recipe after SwinIR (DF2K, L1,
Adam 2e-4 (0.9, 0.99), 500k iterations halved at 250k / 400k / 450k / 475k, flips and rotations, batch 4 x 8
GPUs, an EMA of the weights with decay 0.999 that validation, tests and the published weights use); LR crops of 96
(SwinIR: 64) so the patch-16 ViT sees 6x6 tokens. The decoder upsamples by pixel shuffle with no image-space skip,
as SwinIR's classical SR.
"""

from mmengine.config import read_base

with read_base():
    from .denoise_vit_b_sfp_blind import *

from mmengine.hooks import EMAHook
from mmengine.optim import MultiStepLR
from torch.optim import Adam

scale = 4
lr_crop = 96
data_root = "data/SR"
test_sets = ("Set5", "Set14", "B100", "Urban100", "Manga109")

model.update(scale=scale, loss_fn=l1_loss)
model.backbone.backbone.update(img_size=lr_crop)
train_dataloader.update(batch_size=4)  # per GPU; 8 GPUs give SwinIR's 32
# assigned, not updated: update() would merge the denoising ConcatDataset's keys into this one
train_dataloader.dataset = dict(type=PairedImageDataset, gt_dir=f"{data_root}/DF2K/HR",
                                lq_dir=f"{data_root}/DF2K/LR_bicubic/X{scale}", lq_name=f"{{}}x{scale}", scale=scale,
                                crop_size=lr_crop * scale, flip=True, rot90=True, name="DF2K")
test_dataloader.dataset.datasets = [
    dict(type=PairedImageDataset, gt_dir=f"{data_root}/{name}/HR", lq_dir=f"{data_root}/{name}/LR_bicubic/X{scale}",
         lq_name=f"{{}}x{scale}", scale=scale, name=name) for name in test_sets
]
test_evaluator = dict(type=RestorationEvaluator, crop_border=scale, test_y_channel=True)
val_dataloader = dict(test_dataloader, dataset=test_dataloader["dataset"]["datasets"][0])  # Set5
val_evaluator = test_evaluator

optimizer = dict(type=Adam, lr=2e-4, betas=(0.9, 0.99), weight_decay=0.0, layer_decay=0.9)
clip_grad = None
max_iters = 500000
param_scheduler = [
    dict(type=LinearLR, start_factor=0.001, by_epoch=False, begin=0, end=1000),
    dict(type=MultiStepLR, by_epoch=False, begin=0, end=max_iters, milestones=[250000, 400000, 450000, 475000],
         gamma=0.5),
]
train_cfg = dict(by_epoch=False, max_iters=max_iters, val_interval=5000)
default_hooks.checkpoint.update(interval=5000)
ema_decay = 0.999  # SwinIR / BasicSR ema_decay: ema = decay * ema + (1 - decay) * weights after every step
custom_hooks = [dict(type=EMAHook, momentum=1 - ema_decay)]  # mmengine's momentum is the new weights' share

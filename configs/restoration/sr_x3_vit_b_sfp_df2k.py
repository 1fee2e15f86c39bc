"""Classical x3 super-resolution on ViT-B + simple pyramid, DF2K training, the five SR test sets (Y, crop 3)."""

from mmengine.config import read_base

with read_base():
    from .sr_x4_vit_b_sfp_df2k import *

scale = 3
model.update(scale=scale)
train_dataloader.dataset.update(lq_dir=f"{data_root}/DF2K/LR_bicubic/X{scale}", lq_name=f"{{}}x{scale}", scale=scale,
                                crop_size=lr_crop * scale)
test_dataloader.dataset.datasets = [
    dict(d, lq_dir=f"{data_root}/{d.name}/LR_bicubic/X{scale}", lq_name=f"{{}}x{scale}", scale=scale)
    for d in test_dataloader.dataset.datasets
]
val_dataloader.dataset = test_dataloader.dataset.datasets[0]
test_evaluator.update(crop_border=scale)
val_evaluator = test_evaluator

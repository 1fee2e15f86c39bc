"""Classical x4 super-resolution on ViT-B + simple pyramid trained on DIV2K alone (800 images; SwinIR's DIV2K
setting), the five SR test sets (Y, crop 4)."""

from mmengine.config import read_base

with read_base():
    from .sr_x4_vit_b_sfp_df2k import *

train_dataloader.dataset.update(gt_dir=f"{data_root}/DIV2K/DIV2K_train_HR",
                                lq_dir=f"{data_root}/DIV2K/DIV2K_train_LR_bicubic/X{scale}", name="DIV2K")

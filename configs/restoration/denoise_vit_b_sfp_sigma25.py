"""Non-blind Gaussian colour denoising at sigma 25 on ViT-B + simple pyramid: trained and tested at sigma 25."""

from mmengine.config import read_base

with read_base():
    from .denoise_vit_b_sfp_blind import *

sigma = 25
train_dataloader.dataset.datasets = [dict(d, degradations=[dict(type=GaussianNoise, sigma=sigma)])
                                     for d in train_dataloader.dataset.datasets]
test_dataloader.dataset.datasets = [d for d in test_dataloader.dataset.datasets if d.name.endswith(f"_sigma{sigma}")]
val_dataloader.dataset.degradations[0].update(sigma=sigma)
val_dataloader.dataset.update(name=f"CBSD68_sigma{sigma}")

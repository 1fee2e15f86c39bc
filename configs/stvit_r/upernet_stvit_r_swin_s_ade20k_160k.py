"""UperNet on STViT-R-Swin-S, ADE20K, 160k iterations, 512 crops (the paper reports 48.3 mIoU).

The STViT-R paper and release give no segmentation hyperparameters; this uses ViT-CoMer's ADE20K UperNet
schedule: batch 16, AdamW lr 6e-5, weight decay 0.01 (none on norms and
relative position tables), poly lr after 1500 linear warm-up iterations, slide test 512 / 341; no layer-wise lr
decay (densevit defines it over plain-ViT blocks only). Backbone as in the Mask R-CNN config (released ImageNet init,
drop path 0.2); its four maps (strides 4-32, Swin's stage widths C, 2C, 4C, 8C) feed UperNet directly and the
stride-16 map the auxiliary FCN head. Data, evaluation and schedule come from the plain-ViT UperNet config.
"""

from mmengine.config import read_base
from torch.optim import AdamW

with read_base():
    from ..upernet.upernet_vit_b_sfp_ade20k_160k import *
    from .mask_rcnn_stvit_r_swin_s_3x import model as detector

model.backbone = detector.backbone.backbone  # the detector's STViT-R-Swin-S, without its FPN
del detector
model.decode_head.update(in_channels=tuple(model.backbone.embed_dim * 2**i for i in range(4)))
model.aux_head.update(in_channels=model.backbone.embed_dim * 4)
optimizer = dict(
    type=AdamW, lr=6e-5, betas=(0.9, 0.999), weight_decay=0.01, no_decay_names=("relative_position_bias_table",)
)

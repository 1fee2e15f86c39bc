"""UperNet on STViT-R-Swin-B, ADE20K, 160k iterations (the paper reports 48.9 mIoU): the Swin-S config's schedule
(ViT-CoMer's, not a published STViT-R recipe) with the B backbone and drop path 0.3 of the Swin-B detector config."""

from mmengine.config import read_base

with read_base():
    from .mask_rcnn_stvit_r_swin_b_3x import model as detector
    from .upernet_stvit_r_swin_s_ade20k_160k import *

model.backbone = detector.backbone.backbone  # the detector's STViT-R-Swin-B, without its FPN
del detector
model.decode_head.update(in_channels=tuple(model.backbone.embed_dim * 2**i for i in range(4)))
model.aux_head.update(in_channels=model.backbone.embed_dim * 4)

"""UperNet on STViT-R over a ViTDet-style ViT-B (MAE init) with the simple feature pyramid, ADE20K, 160k iterations.

The authors released no plain-ViT variant and the paper gives no segmentation recipe for STViT-R, so
this is the plain ViT-B UperNet config unchanged (configs/upernet/upernet_vit_b_sfp_ade20k_160k.py: MAE's ADE20K
recipe, AdamW lr 1e-4, weight decay 0.05, layer decay 0.65, drop path 0.1, 512 crops, batch 16) with the dumbbell
unit of the STViT-R ViT-B detector: blocks 0-2 and 9-11 on the 32x32 image tokens, blocks 3-8 as init, local,
global, local, global, recover (7x7 windows pooled to 3x3, key/value regions 14 and 27), every role reusing the MAE
weights of its block.
"""

from mmengine.config import read_base

with read_base():
    from ..upernet.upernet_vit_b_sfp_ade20k_160k import *
    from .mask_rcnn_stvit_r_vit_b_100ep import model as detector

# the detector's dumbbell unit over this config's ViT-B
model.backbone.backbone = dict(detector.backbone.backbone, vit=model.backbone.backbone)
del detector

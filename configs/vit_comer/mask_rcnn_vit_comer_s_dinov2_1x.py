"""Mask R-CNN + ViT-CoMer-S (DINOv2-S init), COCO, 1x (paper: 48.6 box / 42.9 mask AP).

As the reference's DINOv2 configs: the DINOv2 patch-14 kernel resized to 16 and its 37x37 position grid kept
(pretrain size 592), layer scale from the checkpoint, multi-scale training even at 1x, layer-wise lr decay
0.7 (lr x 0.7^(13 - layer)) and no weight decay on one-dimensional parameters (biases, norms, gammas) only.
"""

from mmengine.config import read_base

with read_base():
    from .mask_rcnn_vit_comer_s_deit_1x import *

model.backbone.backbone.update(pretrain_img_size=592, pretrained="checkpoints/dinov2_vits14_pretrain.pth")
train_dataloader.dataset.transforms.update(scale_range=(0.6, 1.0))
optimizer.update(layer_decay=0.7, no_decay_names=("bias", "gamma"))

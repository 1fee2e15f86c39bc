"""UperNet on a ViTDet-style plain ViT-B (MAE init) with the simple feature pyramid, ADE20K, 160k iterations.

Batch 16 (2 per GPU x 8), 512x512 crops; MAE's ADE20K fine-tuning recipe: AdamW lr 1e-4, weight decay 0.05,
layer decay 0.65, drop path 0.1, poly lr after 1500 linear warm-up iterations. Test: short side 512 (long side
<= 2048), slide windows 512 / stride 341, logits resized to the original image before the argmax (mmsegmentation's
UperNet recipe as ViT-Adapter / ViT-CoMer train it).
The ViT-CoMer and STViT-R UperNet configs import this one and change the backbone and the optimiser.
"""

from mmengine.config import read_base
from torch.optim import AdamW

from densevit.adapters.simple_pyramid import SimpleFeaturePyramid
from densevit.backbones.vit import VITDET_SIZES, ViT
from densevit.engine.data import DataPreprocessor
from densevit.heads.seg_heads import FCNHead
from densevit.heads.uper import UPerHead
from densevit.models.segmentor import Segmentor

with read_base():
    from .._base_.datasets.ade20k import *
    from .._base_.default_runtime import *
    from .._base_.schedules.ade20k_160k import *

data_preprocessor = dict(type=DataPreprocessor, size_divisor=32)

# size tables: mmengine hands a config the names it imports as placeholders; .build() returns the table
model = dict(
    type=Segmentor,
    backbone=dict(
        type=SimpleFeaturePyramid,
        # ViTDet-B, its global blocks' relative-position tables sized for the 32x32 tokens of a 512 crop
        backbone=dict(VITDET_SIZES.build()["base"], type=ViT, img_size=crop_size,
                      pretrained="checkpoints/mae_pretrain_vit_base.pth"),
        out_channels=256,
        scale_factors=(4.0, 2.0, 1.0, 0.5),
        top_block=False,  # UperNet uses strides 4-32
    ),
    decode_head=dict(type=UPerHead, in_channels=(256,) * 4, num_classes=num_classes, channels=512),
    aux_head=dict(type=FCNHead, in_channels=256, num_classes=num_classes, channels=256),
    aux_stride=16,
    aux_weight=0.4,
    test_mode="slide",
    crop_size=crop_size,
    crop_stride=341,
    test_scale=(2048, 512),
)

# AdamW with layer-wise lr decay over the ViT blocks; no weight decay on norms and position tables
optimizer = dict(type=AdamW, lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05, layer_decay=0.65)
default_hooks.checkpoint.update(interval=16000, max_keep_ckpts=2)

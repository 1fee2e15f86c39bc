"""ViTDet Mask R-CNN, ViT-B (MAE init), COCO, 100 epochs at batch 64, 1024 input (ViTDet, Li et al. 2022; detectron2
projects/ViTDet).

The L and H configs import this one and change the backbone size and the layer decay.
"""

from mmengine.config import read_base
from torch.optim import AdamW

from densevit.adapters.simple_pyramid import SimpleFeaturePyramid
from densevit.backbones.vit import VITDET_SIZES, ViT
from densevit.datasets.transforms import detection_test_transforms, detection_train_transforms
from densevit.engine.data import DataPreprocessor
from densevit.models.mask_rcnn import MaskRCNN

with read_base():
    from .._base_.datasets.coco_instance import *
    from .._base_.default_runtime import *
    from .._base_.schedules.vitdet_100ep import *

image_size = 1024

data_preprocessor = dict(type=DataPreprocessor, pad_size=image_size)

# size tables: mmengine hands a config the names it imports as placeholders; .build() returns the table
model = dict(
    type=MaskRCNN,
    num_classes=80,
    backbone=dict(
        type=SimpleFeaturePyramid,
        # ViTDet-B: 14x14 windows, global attention in blocks 2, 5, 8, 11, relative positions sized for 1024
        # inputs, the MAE 14x14 position table resized at every forward
        backbone=dict(type=ViT, **VITDET_SIZES.build()["base"], pretrained="checkpoints/mae_pretrain_vit_base.pth"),
        out_channels=256,
        scale_factors=(4.0, 2.0, 1.0, 0.5),
    ),
)

# large-scale jitter: random resize to 0.1-2.0 x 1024, then a 1024 crop
train_dataloader.update(batch_size=8, num_workers=8)  # 8 GPUs give the paper's batch of 64
train_dataloader.dataset.transforms = dict(type=detection_train_transforms, size=image_size, scale_range=(0.1, 2.0))
val_dataloader.update(num_workers=4)
val_dataloader.dataset.transforms = dict(type=detection_test_transforms, size=image_size)
test_dataloader = val_dataloader

# AdamW with ViTDet's layer-wise lr decay; no weight decay on norms and pos_embed
optimizer = dict(type=AdamW, lr=1e-4, betas=(0.9, 0.999), weight_decay=0.1, layer_decay=0.7)
default_hooks.checkpoint.update(interval=5000)
default_hooks.logger.update(interval=20)

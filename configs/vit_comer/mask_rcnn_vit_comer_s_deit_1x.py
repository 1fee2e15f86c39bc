"""Mask R-CNN + ViT-CoMer-S (DeiT-S init), COCO, 1x: 12 epochs at batch 16 (paper: 45.8 box / 40.5 mask AP).

The paper's Mask R-CNN recipe (mmdet's standard FPN Mask R-CNN): the adapter's four 384-channel maps go through
an FPN (256 channels, p2-p6) into a 1-conv RPN head, a 2-fc box head and a 4-conv mask head without norms.
AdamW lr 1e-4, weight decay 0.05 (none on biases, norms, pos_embed, level_embed), 500 linear warm-up
iterations, lr x0.1 after epochs 8 and 11, 2 images per GPU x 8 GPUs. ViT blocks use 14x14 windows except the
global blocks 2, 5, 8, 11 (detection variant of the adapter). The other ViT-CoMer detection configs import this
one and change the size, the initialisation or the schedule.
Deviation: densevit has no mmdet "shorter side 800, longer <= 1333" resize yet; images are resized so that their
longer side is 1067 (what mmdet gives 4:3 COCO images) and random-cropped to at most 1067 in training.
"""

from mmengine.config import read_base
from torch.optim import AdamW
from torchvision.models.detection.faster_rcnn import TwoMLPHead
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads
from torchvision.models.detection.rpn import RPNHead

from densevit.adapters.fpn import FPN
from densevit.adapters.vit_comer import build_vit_comer
from densevit.datasets.transforms import detection_test_transforms, detection_train_transforms
from densevit.engine.data import DataPreprocessor
from densevit.models.mask_rcnn import MaskRCNN

with read_base():
    from .._base_.datasets.coco_instance import *
    from .._base_.default_runtime import *
    from .._base_.schedules.coco_1x import *

image_size = 1067  # longer side; 4:3 images become 1067x800 as with mmdet's (1333, 800) resize

data_preprocessor = dict(type=DataPreprocessor, size_divisor=32)

model = dict(
    type=MaskRCNN,
    num_classes=80,
    backbone=dict(
        type=FPN,
        backbone=dict(
            type=build_vit_comer,
            size="small",  # densevit.adapters.vit_comer.VIT_COMER_SIZES
            task="detection",  # MRFP hidden 0.5 D, every level gets the final ViT features
            window_size=14,
            pretrained="checkpoints/deit_small_patch16_224-cd65a155.pth",
        ),
        out_channels=256,
        extra_pool=True,  # p6 for the RPN
    ),
    # mmdet's standard heads (the paper's), not ViTDet's
    rpn_head_module=dict(type=RPNHead, in_channels=256, num_anchors=3, conv_depth=1),
    box_head_module=dict(type=TwoMLPHead, in_channels=256 * 7 * 7, representation_size=1024),
    mask_head_module=dict(type=MaskRCNNHeads, in_channels=256, layers=[256] * 4, dilation=1),
)

train_dataloader.update(num_workers=4)
train_dataloader.dataset.transforms = dict(type=detection_train_transforms, size=image_size, scale_range=(1.0, 1.0))
val_dataloader.update(num_workers=4)
val_dataloader.dataset.transforms = dict(type=detection_test_transforms, size=image_size)
test_dataloader = val_dataloader

optimizer = dict(type=AdamW, lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05,
                 no_decay_names=("bias", "pos_embed", "level_embed"))
default_hooks.checkpoint.update(interval=iters_per_epoch)
default_hooks.logger.update(interval=20)

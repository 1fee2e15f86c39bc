"""STViT-R-Swin-S Mask R-CNN with FPN, COCO, the released 3x recipe (Chang et al., CVPR 2023; the official STViT-R
release).

Backbone as released (conv stem, stage 3 as three dumbbell units, released padding mask), initialised from the
released ImageNet checkpoint. Recipe: AdamW lr 1e-4, weight decay 0.05 (none on norms and relative position
tables), drop path 0.2, 36 epochs at batch 16 with lr x0.1 after epochs 27 and 33, 500 warm-up iterations.
Differences from the release: Mask R-CNN heads of ViTDet (4 conv + 1 fc box head) instead of the 3-stage
Cascade heads (those are in cascade_mask_rcnn_stvit_r_swin_s_3x.py), and multi-scale training by the longest side
in [640, 1066] (the release's short side in [480, 800] for 4:3 images; its random-crop branch is left out).
"""

from mmengine.config import read_base
from torch.optim import AdamW

from densevit.adapters.fpn import FPN
from densevit.backbones.swin_stvit_r import STVIT_R_SWIN_SIZES, SwinSTViTR
from densevit.datasets.transforms import detection_test_transforms, detection_train_transforms
from densevit.engine.data import DataPreprocessor
from densevit.models.mask_rcnn import MaskRCNN

with read_base():
    from .._base_.datasets.coco_instance import *
    from .._base_.default_runtime import *
    from .._base_.schedules.coco_3x import *

data_preprocessor = dict(type=DataPreprocessor, size_divisor=32)

# size tables: mmengine hands a config the names it imports as placeholders; .build() returns the table
model = dict(
    type=MaskRCNN,
    num_classes=80,
    backbone=dict(
        type=FPN,
        backbone=dict(
            type=SwinSTViTR,
            # Swin-S widths and depths, drop path 0.2
            **STVIT_R_SWIN_SIZES.build()["small"],
            window_size=7,
            # stage 3: (image, init 14, refine 21, local, global, recover 27) x 3, windows pooled 7x7 -> 3x3
            pooled=3,
            init_kernel=14,
            refine_kernel=21,
            recover_kernel=27,
            layer_scale_init=1e-5,
            pad_mask="released",
            pretrained="checkpoints/STViT-R-Swin-S.pth",
        ),
        out_channels=256,
        extra_pool=True,
    ),
)

# longest side U[640, 1066] (= short side 480-800 on 4:3 images); the 1333 crop never cuts
train_dataloader.dataset.transforms = dict(type=detection_train_transforms, size=1333, scale_range=(0.48, 0.8))
val_dataloader.dataset.transforms = dict(type=detection_test_transforms, size=1067)  # 1067x800 for 4:3, as released
test_dataloader = val_dataloader

optimizer = dict(
    type=AdamW, lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05, no_decay_names=("relative_position_bias_table",)
)
default_hooks.checkpoint.update(interval=iters_per_epoch)

"""ViTPose-B, classic decoder (two deconvolutions), COCO person keypoints at 256x192, MAE init, 210 epochs.

The ViTPose recipe (ViTPose, Xu et al. 2022; github.com/ViTAE-Transformer/ViTPose): ViTPose's ViT (patch padding 2,
class slot folded into the positions, last norm),
drop path 0.3, UDP heatmaps (sigma 2) at 64x48, joint-weighted MSE; AdamW lr 5e-4 at batch 512, weight decay 0.1
(none on biases, norms and the position table), layer decay 0.75, gradient clipping at 1.0. Test: detector boxes
(human AP 56.4), flip test, DARK-UDP, rescoring, OKS-NMS 0.9. The other ViTPose configs import this one.
"""

from mmengine.config import read_base
from torch.optim import AdamW

from densevit.backbones.vitpose import VITPOSE_LAYER_DECAY, VITPOSE_SIZES, ViTPoseBackbone
from densevit.engine.data import DataPreprocessor
from densevit.heads.pose import ClassicPoseHead
from densevit.models.pose import TopDownPose

with read_base():
    from .._base_.datasets.coco_keypoints import *
    from .._base_.default_runtime import *
    from .._base_.schedules.vitpose_210ep import *

# crops are never padded: every crop already has the model's input size
data_preprocessor = dict(type=DataPreprocessor, size_divisor=1)

# size tables: mmengine hands a config the names it imports as placeholders; .build() returns the table
size = VITPOSE_SIZES.build()["base"]
model = dict(
    type=TopDownPose,
    backbone=dict(type=ViTPoseBackbone, **size, img_size=input_size,
                  pretrained="checkpoints/mae_pretrain_vit_base.pth"),  # grid 14x14 -> 16x12 on load
    head=dict(type=ClassicPoseHead, in_channels=size["embed_dim"], num_keypoints=num_keypoints),
    num_keypoints=num_keypoints,
    flip_pairs=flip_pairs,
)

optimizer = dict(type=AdamW, lr=5e-4, betas=(0.9, 0.999), weight_decay=0.1,
                 layer_decay=VITPOSE_LAYER_DECAY.build()["base"], no_decay_names=("pos_embed", "bias"))
clip_grad = dict(max_norm=1.0, norm_type=2)
default_hooks.checkpoint.update(interval=10 * iters_per_epoch, save_best="kpt_AP", rule="greater")

"""Top-down pose on ViT-B + ViTDet's simple feature pyramid, COCO 256x192: the ViTPose-B recipe (MAE init, layer
decay 0.75, 210 epochs); the pyramid's four levels are fused at stride 4 into the heatmaps (``PyramidPoseHead``).
"""

from mmengine.config import read_base

from densevit.adapters.simple_pyramid import SimpleFeaturePyramid
from densevit.heads.pose import PyramidPoseHead

with read_base():
    from .vitpose_b_classic_coco_256x192 import *

model.backbone = dict(
    type=SimpleFeaturePyramid,
    backbone=model.backbone,  # ViTPose's ViT-B: its last-norm stride-16 map builds the pyramid
    out_channels=256,
    scale_factors=(4.0, 2.0, 1.0, 0.5),
    top_block=False,
)
model.head = dict(type=PyramidPoseHead, in_channels=(256,) * 4, strides=(4, 8, 16, 32), num_keypoints=num_keypoints,
                  fuse_strides=(4, 8, 16, 32))

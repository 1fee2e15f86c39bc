"""ViTPose-B, simple decoder (ReLU, bilinear x4, 3x3 conv), COCO 256x192: the classic recipe with the simple head.

(The official ``ViTPose_*_simple_coco_256x192.py`` files of ViTPose-S build the classic head by mistake; this one
builds the simple decoder the paper describes.)
"""

from mmengine.config import read_base

from densevit.heads.pose import SimplePoseHead

with read_base():
    from .vitpose_b_classic_coco_256x192 import *

model.head = dict(type=SimplePoseHead, in_channels=size["embed_dim"], num_keypoints=num_keypoints)

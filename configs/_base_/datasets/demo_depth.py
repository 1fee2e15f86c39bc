"""The built-in demo scenes' depth maps: trained and tested at 128x128, abs_rel and friends over the whole image.

Generate the data first: python -m densevit.datasets.demo data/demo --tasks instances semantic depth
The 256x256 images are halved; predictions are scored at 256x256.
"""

from mmengine.config import read_base

from densevit.datasets.depth_transforms import depth_train_transforms
from densevit.datasets.nyu import NYUDepth
from densevit.evaluation.depth import DepthEvaluator

with read_base():
    from ..._base_.datasets.demo_loaders import *

image_size = 128  # training and test resolution
max_depth = 15.0  # the demo's back wall is 9-12 m away

train_dataloader.dataset = dict(
    type=NYUDepth,
    data_root=data_root,
    split_file=f"{data_root}/depth/train.txt",
    transforms=dict(type=depth_train_transforms, resize=(image_size, image_size), crop_size=None, border_crop=None),
)
val_dataloader.dataset = dict(type=NYUDepth, data_root=data_root, split_file=f"{data_root}/depth/val.txt")
val_evaluator = dict(type=DepthEvaluator, min_depth=1e-3, max_depth=max_depth, crop=None)  # no Eigen crop
test_dataloader = val_dataloader
test_evaluator = val_evaluator

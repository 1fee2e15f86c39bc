"""The built-in demo scenes' label maps as a semantic segmentation set: 6 classes, trained and tested at 128x128.

Generate the data first: python -m densevit.datasets.demo data/demo --tasks instances semantic
The 256x256 images are halved; predictions are scored at 256x256.
"""

from mmengine.config import read_base

from densevit.datasets.ade20k import SegFolderDataset
from densevit.datasets.seg_transforms import seg_train_transforms
from densevit.evaluation.segmentation import SegmentationEvaluator

with read_base():
    from ..._base_.datasets.demo_loaders import *

# label 0 is the background, k + 1 the demo class k (densevit.datasets.demo_scene.DEMO_CLASSES)
classes = ("background", "ellipse", "rectangle", "triangle", "star", "ring")
scale = 128  # training and test resolution

train_dataloader.dataset = dict(
    type=SegFolderDataset,
    img_dir=f"{data_root}/train",
    ann_dir=f"{data_root}/semantic/train",
    classes=classes,
    # flips only: in a CPU budget ADE20K's scale jitter and photometric distortion cost more accuracy than they
    # give (docs/experiments.md)
    transforms=dict(type=seg_train_transforms, scale=(scale, scale), ratio_range=(1.0, 1.0), crop_size=scale,
                    photometric=False),
)
val_dataloader.dataset = dict(type=SegFolderDataset, img_dir=f"{data_root}/val", ann_dir=f"{data_root}/semantic/val",
                              classes=classes)
val_evaluator = dict(type=SegmentationEvaluator, class_names=classes)
test_dataloader = val_dataloader
test_evaluator = val_evaluator

"""The built-in demo shapes as a COCO instance-segmentation set: 256x256 images, 5 classes, box / mask AP.

Generate the data first: python -m densevit.datasets.demo data/demo
"""

from mmengine.config import read_base

from densevit.datasets.coco import CocoDetection
from densevit.datasets.transforms import detection_test_transforms, detection_train_transforms
from densevit.evaluation.coco import CocoEvaluator

with read_base():
    from ..._base_.datasets.demo_loaders import *

image_size = 256  # the images' own size
num_classes = 5

train_dataloader.dataset = dict(
    type=CocoDetection,
    ann_file=f"{data_root}/annotations/instances_train.json",
    img_dir=f"{data_root}/train",
    transforms=dict(type=detection_train_transforms, size=image_size, scale_range=(0.8, 1.25)),
    train=True,
)
val_dataloader.dataset = dict(
    type=CocoDetection,
    ann_file=f"{data_root}/annotations/instances_val.json",
    img_dir=f"{data_root}/val",
    transforms=dict(type=detection_test_transforms, size=image_size),
)
val_evaluator = dict(type=CocoEvaluator, ann_file=f"{data_root}/annotations/instances_val.json")
test_dataloader = val_dataloader
test_evaluator = val_evaluator

"""COCO 2017 instance segmentation: train2017 (boxes and masks) for training, val2017 for the COCO box / mask AP.

Layout: data/coco/{train2017,val2017}/*.jpg, data/coco/annotations/instances_{train,val}2017.json. A method
config sets the train and test transforms: the input size and scale jitter are part of its recipe.
"""

from mmengine.dataset import DefaultSampler

from densevit.datasets.coco import CocoDetection
from densevit.engine.stream import ResumableInfiniteSampler
from densevit.evaluation.coco import CocoEvaluator

data_root = "data/coco"

train_dataloader = dict(
    batch_size=2,  # per GPU; 8 GPUs give a batch of 16
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type=ResumableInfiniteSampler, shuffle=True),
    dataset=dict(
        type=CocoDetection,
        ann_file=f"{data_root}/annotations/instances_train2017.json",
        img_dir=f"{data_root}/train2017",
        train=True,
    ),
)
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    sampler=dict(type=DefaultSampler, shuffle=False),
    dataset=dict(
        type=CocoDetection,
        ann_file=f"{data_root}/annotations/instances_val2017.json",
        img_dir=f"{data_root}/val2017",
    ),
)
val_evaluator = dict(type=CocoEvaluator, ann_file=f"{data_root}/annotations/instances_val2017.json")
# a config that changes val_dataloader sets test_dataloader again: each name holds its own copy
test_dataloader = val_dataloader
test_evaluator = val_evaluator

"""The built-in demo figures as a top-down pose set: 17 COCO joints, crops of 128x96, ground-truth boxes.

Generate the data first: python -m densevit.datasets.demo data/demo --tasks pose
The figures' images are data/demo/pose/{train,val}/*.jpg with COCO person keypoints in
data/demo/annotations/person_keypoints_{train,val}.json: the quickstart reads them with the COCO loader.
"""

from mmengine.config import read_base

from densevit.datasets.coco_keypoints import CocoKeypoints
from densevit.datasets.keypoint_info import COCO_KEYPOINTS
from densevit.evaluation.keypoints import CocoKeypointEvaluator

with read_base():
    from ..._base_.datasets.demo_loaders import *

input_size = (128, 96)  # (H, W); heatmaps are a quarter: 32x24
keypoint_info = COCO_KEYPOINTS
num_keypoints = keypoint_info.num_keypoints
flip_pairs = keypoint_info.flip_pairs
val_ann_file = f"{data_root}/annotations/person_keypoints_val.json"

train_dataloader.update(
    batch_size=32,
    dataset=dict(
        type=CocoKeypoints,
        ann_file=f"{data_root}/annotations/person_keypoints_train.json",
        img_dir=f"{data_root}/pose/train",
        input_size=input_size,
        num_keypoints=num_keypoints,  # checked against the file: the model is built for this many
        train=True,
        cache_images=True,  # decoded once (200 MB): decoding was most of the data worker's time
    ),
)
val_dataloader.update(
    batch_size=32,
    dataset=dict(type=CocoKeypoints, ann_file=val_ann_file, img_dir=f"{data_root}/pose/val", input_size=input_size,
                 num_keypoints=num_keypoints),
)
val_evaluator = dict(type=CocoKeypointEvaluator, ann_file=val_ann_file, sigmas=keypoint_info.sigmas)
test_dataloader = val_dataloader
test_evaluator = val_evaluator

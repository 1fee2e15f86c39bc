"""COCO 2017 person keypoints, top-down at 256x192: ground-truth boxes for training, the detector boxes of
``COCO_val2017_detections_AP_H_56_person.json`` (human AP 56.4) for the OKS AP on val2017.

Layout: data/coco/{train2017,val2017}/*.jpg, data/coco/annotations/person_keypoints_{train,val}2017.json and
data/coco/person_detection_results/COCO_val2017_detections_AP_H_56_person.json (from the ViTPose / mmpose
downloads). Training augmentation is mmpose 1.x's (``TopDownAugment``'s defaults); crops are cut with the UDP
affine. ``keypoint_info`` holds the 17 joints' flip pairs and OKS sigmas for the model and the evaluator.
Ground-truth boxes instead: ``tools/test.py ... --cfg-options test_dataloader.dataset.bbox_file=None``.
"""

from mmengine.dataset import DefaultSampler

from densevit.datasets.coco_keypoints import CocoKeypoints
from densevit.datasets.keypoint_info import COCO_KEYPOINTS
from densevit.engine.stream import ResumableInfiniteSampler
from densevit.evaluation.keypoints import CocoKeypointEvaluator

data_root = "data/coco"
input_size = (256, 192)  # (H, W); heatmaps are a quarter: 64x48
keypoint_info = COCO_KEYPOINTS
num_keypoints = keypoint_info.num_keypoints
flip_pairs = keypoint_info.flip_pairs
val_ann_file = f"{data_root}/annotations/person_keypoints_val2017.json"

train_dataloader = dict(
    batch_size=64,  # per GPU; 8 GPUs give ViTPose's 512
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type=ResumableInfiniteSampler, shuffle=True),
    dataset=dict(
        type=CocoKeypoints,
        ann_file=f"{data_root}/annotations/person_keypoints_train2017.json",
        img_dir=f"{data_root}/train2017",
        input_size=input_size,
        num_keypoints=num_keypoints,  # checked against the annotation file's category
        train=True,
    ),
)
val_dataloader = dict(
    batch_size=32,
    num_workers=4,
    sampler=dict(type=DefaultSampler, shuffle=False),
    dataset=dict(
        type=CocoKeypoints,
        ann_file=val_ann_file,
        img_dir=f"{data_root}/val2017",
        input_size=input_size,
        num_keypoints=num_keypoints,
        bbox_file=f"{data_root}/person_detection_results/COCO_val2017_detections_AP_H_56_person.json",
    ),
)
val_evaluator = dict(type=CocoKeypointEvaluator, ann_file=val_ann_file, sigmas=keypoint_info.sigmas)
# a config that changes val_dataloader sets test_dataloader again: each name holds its own copy
test_dataloader = val_dataloader
test_evaluator = val_evaluator

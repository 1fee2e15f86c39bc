"""The detection quickstart's Mask R-CNN trained on the demo figures as one class, "person": the person detector
whose boxes ``tools/infer.py --det-config`` hands to the pose quickstart.

Generate the data first: python -m densevit.datasets.demo data/demo --tasks pose
The figures' COCO person keypoint files hold boxes and masks too, so ``CocoDetection`` reads them as instances.
The recipe is the shapes quickstart's, not tuned for people.
"""

from mmengine.config import read_base

with read_base():
    from .mask_rcnn_vit_tiny_demo import *

num_classes = 1  # person
model.num_classes = num_classes
model.box_predictor_module.num_classes = num_classes
model.mask_predictor_module.num_classes = num_classes
train_dataloader.dataset.ann_file = f"{data_root}/annotations/person_keypoints_train.json"
train_dataloader.dataset.img_dir = f"{data_root}/pose/train"
val_dataloader.dataset.ann_file = f"{data_root}/annotations/person_keypoints_val.json"
val_dataloader.dataset.img_dir = f"{data_root}/pose/val"
val_evaluator = dict(type=CocoEvaluator, ann_file=f"{data_root}/annotations/person_keypoints_val.json")
test_dataloader = val_dataloader
test_evaluator = val_evaluator

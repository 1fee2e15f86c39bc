"""Datasets and transforms: COCO (instances, top-down keypoints), ADE20K, NYUv2, restoration pairs, folders, demo."""

from densevit.datasets.ade20k import ADE20K, SegFolderDataset
from densevit.datasets.coco import CocoDetection
from densevit.datasets.coco_keypoints import CocoKeypoints, TopDownAugment
from densevit.datasets.depth_transforms import depth_train_transforms
from densevit.datasets.keypoint_info import COCO_KEYPOINTS, KeypointInfo
from densevit.datasets.nyu import DepthFolder, NYUDepth
from densevit.datasets.restoration import BicubicDownsample, GaussianBlur, GaussianNoise, PairedImageDataset
from densevit.datasets.seg_transforms import seg_train_transforms
from densevit.datasets.transforms import detection_test_transforms, detection_train_transforms

__all__ = [
    "ADE20K",
    "COCO_KEYPOINTS",
    "BicubicDownsample",
    "CocoDetection",
    "CocoKeypoints",
    "DepthFolder",
    "GaussianBlur",
    "GaussianNoise",
    "KeypointInfo",
    "NYUDepth",
    "PairedImageDataset",
    "SegFolderDataset",
    "TopDownAugment",
    "depth_train_transforms",
    "detection_test_transforms",
    "detection_train_transforms",
    "seg_train_transforms",
]

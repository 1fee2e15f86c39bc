"""Datasets and their transforms: COCO, ADE20K, NYUv2, restoration pairs, generic folders and the demo data."""

from densevit.datasets.ade20k import ADE20K, SegFolderDataset
from densevit.datasets.coco import CocoDetection
from densevit.datasets.depth_transforms import depth_train_transforms
from densevit.datasets.nyu import DepthFolder, NYUDepth
from densevit.datasets.restoration import BicubicDownsample, GaussianBlur, GaussianNoise, PairedImageDataset
from densevit.datasets.seg_transforms import seg_train_transforms
from densevit.datasets.transforms import detection_test_transforms, detection_train_transforms

__all__ = [
    "ADE20K",
    "BicubicDownsample",
    "CocoDetection",
    "DepthFolder",
    "GaussianBlur",
    "GaussianNoise",
    "NYUDepth",
    "PairedImageDataset",
    "SegFolderDataset",
    "depth_train_transforms",
    "detection_test_transforms",
    "detection_train_transforms",
    "seg_train_transforms",
]

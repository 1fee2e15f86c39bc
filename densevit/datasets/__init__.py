"""Datasets and transforms: COCO (instances, top-down keypoints), ADE20K, NYUv2, restoration pairs, folders, demo."""

from densevit.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "ade20k": ("ADE20K", "SegFolderDataset"),
    "coco": ("CocoDetection",),
    "coco_keypoints": ("CocoKeypoints", "TopDownAugment"),
    "depth_transforms": ("depth_train_transforms",),
    "keypoint_info": ("COCO_KEYPOINTS", "KeypointInfo"),
    "nyu": ("DepthFolder", "NYUDepth"),
    "restoration": ("BicubicDownsample", "GaussianBlur", "GaussianNoise", "PairedImageDataset"),
    "seg_transforms": ("seg_train_transforms",),
    "transforms": ("detection_test_transforms", "detection_train_transforms"),
})

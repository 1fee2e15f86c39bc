"""Semantic segmentation datasets: any folder of images with label PNGs, and ADE20K (SceneParsing) on top of it.

Items follow the task model contract: ``{"inputs": uint8 [3, H, W] RGB, "data_samples": {img_id, img_path,
seg_map_path, ori_shape, img_shape, scale_factor, gt_sem_seg [H, W] long}}``. The transforms (if any) are
applied to the image and the label map together; evaluation datasets take none, so the labels stay at the
original resolution (the Segmentor does the test-time resizing).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import albumentations as A
import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from densevit.datasets.io import read_image
from densevit.datasets.transforms import seed_transforms

__all__ = ["ADE20K", "ADE20K_CLASSES", "SegFolderDataset", "read_label", "reduce_zero_label"]

# Order of the label values 1..150 of ADEChallengeData2016 (0 is "other").
ADE20K_CLASSES: tuple[str, ...] = (
    "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed", "windowpane", "grass", "cabinet",
    "sidewalk", "person", "earth", "door", "table", "mountain", "plant", "curtain", "chair", "car", "water",
    "painting", "sofa", "shelf", "house", "sea", "mirror", "rug", "field", "armchair", "seat", "fence", "desk",
    "rock", "wardrobe", "lamp", "bathtub", "railing", "cushion", "base", "box", "column", "signboard",
    "chest of drawers", "counter", "sand", "sink", "skyscraper", "fireplace", "refrigerator", "grandstand",
    "path", "stairs", "runway", "case", "pool table", "pillow", "screen door", "stairway", "river", "bridge",
    "bookcase", "blind", "coffee table", "toilet", "flower", "book", "hill", "bench", "countertop", "stove",
    "palm", "kitchen island", "computer", "swivel chair", "boat", "bar", "arcade machine", "hovel", "bus",
    "towel", "light", "truck", "tower", "chandelier", "awning", "streetlight", "booth", "television receiver",
    "airplane", "dirt track", "apparel", "pole", "land", "bannister", "escalator", "ottoman", "bottle",
    "buffet", "poster", "stage", "van", "ship", "fountain", "conveyer belt", "canopy", "washer", "plaything",
    "swimming pool", "stool", "barrel", "basket", "waterfall", "tent", "bag", "minibike", "cradle", "oven",
    "ball", "food", "step", "tank", "trade name", "microwave", "pot", "animal", "bicycle", "lake",
    "dishwasher", "screen", "blanket", "sculpture", "hood", "sconce", "vase", "traffic light", "tray",
    "ashcan", "fan", "pier", "crt screen", "plate", "monitor", "bulletin board", "shower", "radiator",
    "glass", "clock", "flag",
)


def reduce_zero_label(label: np.ndarray) -> np.ndarray:
    """uint8 label map with 0 = "other": 0 -> 255 (ignored), k -> k - 1, 255 stays 255 (mmsegmentation's rule)."""
    if label.dtype != np.uint8:
        raise TypeError(f"reduce_zero_label needs a uint8 label map (ADE20K PNGs are uint8), found {label.dtype}")
    label = label.copy()
    label[label == 0] = 255
    label = label - 1  # uint8 arithmetic: 255 -> 254, put back below
    label[label == 254] = 255
    return label


def read_label(path: str | Path) -> np.ndarray:
    """Read a single-channel label PNG as stored (palette indices for 'P' mode files): uint8/uint16 [H, W]."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"label file {path} does not exist")
    try:
        with Image.open(path) as img:
            label = np.asarray(img)
    except OSError as err:
        raise OSError(f"label file {path} could not be decoded ({err})") from err
    if label.ndim != 2:
        raise ValueError(f"label file {path}: expected a single-channel label map, found shape {list(label.shape)}")
    if label.dtype == np.int32:  # PIL's 'I' mode for 16-bit PNGs
        label = label.astype(np.uint16)
    return label


class SegFolderDataset(Dataset):
    """Images and label PNGs paired by file name: ``img_dir/<stem><img_suffix>`` <-> ``ann_dir/<stem><seg_suffix>``.

    Label values must be class indices 0..len(classes)-1 or ``ignore_index`` (after ``reduce_zero_label``); any
    other value fails when the image is loaded, naming the file and the values found.
    """

    def __init__(
        self,
        img_dir: str | Path,
        ann_dir: str | Path,
        classes: Sequence[str],
        img_suffix: str = ".jpg",
        seg_suffix: str = ".png",
        reduce_zero_label: bool = False,
        ignore_index: int = 255,
        transforms: A.Compose | None = None,
    ) -> None:
        self.img_dir, self.ann_dir = Path(img_dir), Path(ann_dir)
        for name, folder in (("img_dir", self.img_dir), ("ann_dir", self.ann_dir)):
            if not folder.is_dir():
                raise FileNotFoundError(f"{type(self).__name__}: {name} {folder} is not a folder")
        if not 0 < len(classes) <= ignore_index:
            raise ValueError(f"{type(self).__name__}: need 1..{ignore_index} classes (ignore_index "
                             f"{ignore_index} must not be a class), got {len(classes)}")
        self.classes = tuple(classes)
        self.reduce_zero_label = reduce_zero_label
        self.ignore_index = ignore_index
        self.transforms = transforms
        self.img_paths = sorted(p for p in self.img_dir.iterdir() if p.name.endswith(img_suffix))
        if not self.img_paths:
            raise FileNotFoundError(f"{type(self).__name__}: no '*{img_suffix}' images in {self.img_dir}")
        stem = len(img_suffix)
        self.seg_paths = [self.ann_dir / (p.name[:-stem] + seg_suffix) for p in self.img_paths]
        missing = [str(p) for p in self.seg_paths if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"{type(self).__name__}: {len(missing)} of {len(self.seg_paths)} images have no "
                                    f"label file, e.g. {missing[:3]}")

    @property
    def metainfo(self) -> dict:
        """Class names, saved into checkpoints so inference can label its pictures."""
        return {"classes": self.classes}

    def __len__(self) -> int:
        return len(self.img_paths)

    def load_label(self, index: int) -> np.ndarray:
        """Label map [H, W] of item ``index`` after ``reduce_zero_label``, checked against the declared classes."""
        path = self.seg_paths[index]
        label = read_label(path)
        if self.reduce_zero_label:
            label = reduce_zero_label(label)
        bad = (label >= len(self.classes)) & (label != self.ignore_index)
        if bad.any():
            values = np.unique(label[bad]).tolist()
            note = " after reduce_zero_label" if self.reduce_zero_label else ""
            raise ValueError(
                f"label file {path} holds values {values[:20]}{note}, outside the {len(self.classes)} declared "
                f"classes 0..{len(self.classes) - 1} and the ignore value {self.ignore_index}"
            )
        return label

    def __getitem__(self, index: int) -> dict:
        img_path = self.img_paths[index]
        image = read_image(img_path)
        label = self.load_label(index)
        if image.shape[:2] != label.shape:
            raise ValueError(f"image {img_path} is {image.shape[0]}x{image.shape[1]} but its label file "
                             f"{self.seg_paths[index]} is {label.shape[0]}x{label.shape[1]}")
        h0, w0 = image.shape[:2]
        if self.transforms is not None:
            seed_transforms(self.transforms)
            out = self.transforms(image=image, mask=label)
            image, label = out["image"], out["mask"]
        h, w = image.shape[:2]
        sample = {
            "img_id": index,
            "img_path": str(img_path),
            "seg_map_path": str(self.seg_paths[index]),
            "ori_shape": (h0, w0),
            "img_shape": (h, w),
            "scale_factor": (w / w0, h / h0),
            "gt_sem_seg": torch.from_numpy(label.astype(np.int64)),
        }
        return {"inputs": torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))), "data_samples": sample}


class ADE20K(SegFolderDataset):
    """ADEChallengeData2016 split ``training`` / ``validation``: 150 classes, label 0 ("other") ignored."""

    classes: tuple[str, ...] = ADE20K_CLASSES  # readable without the data, e.g. to label inference pictures

    def __init__(self, data_root: str | Path, split: str = "training", transforms: A.Compose | None = None) -> None:
        if split not in ("training", "validation"):
            raise ValueError(f"ADE20K split must be 'training' or 'validation', got {split!r}")
        root = Path(data_root)
        super().__init__(
            img_dir=root / "images" / split,
            ann_dir=root / "annotations" / split,
            classes=ADE20K_CLASSES,
            img_suffix=".jpg",
            seg_suffix=".png",
            reduce_zero_label=True,
            transforms=transforms,
        )

"""COCO-layout instance dataset (boxes, polygon/RLE masks), as on disk for COCO 2017 and the demo data."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import albumentations as A
import numpy as np
import torch
from pycocotools import mask as mask_utils
from torch.utils.data import Dataset

from densevit.datasets.io import read_image, read_json
from densevit.datasets.transforms import apply_instance_transforms, seed_transforms

__all__ = ["CocoDetection", "decode_segmentation", "load_coco_json"]


def load_coco_json(path: str | Path) -> dict:
    """Read a COCO annotation file and check the keys the loaders rely on."""
    data = read_json(path, "annotation")
    if not isinstance(data, dict):
        raise ValueError(f"annotation file {path}: expected a JSON object, found {type(data).__name__}")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise ValueError(f"annotation file {path}: expected a list under {key!r}, found {data.get(key)!r:.60}")
    for i, ann in enumerate(data["annotations"]):
        missing = {"image_id", "category_id", "bbox"} - ann.keys()
        if missing:
            raise ValueError(f"annotation file {path}: annotations[{i}] lacks {sorted(missing)}")
    return data


def decode_segmentation(segm: list | dict, h: int, w: int) -> np.ndarray:
    """COCO polygons, uncompressed or compressed RLE -> uint8 mask [H, W]."""
    if isinstance(segm, list):
        polys = [p for p in segm if len(p) >= 6]  # a polygon needs three points
        if not polys:
            return np.zeros((h, w), np.uint8)
        rle = mask_utils.merge(mask_utils.frPyObjects(polys, h, w))
    elif isinstance(segm.get("counts"), list):
        rle = mask_utils.frPyObjects(segm, h, w)
    else:
        rle = segm
    return mask_utils.decode(rle)


class CocoDetection(Dataset):
    """COCO instances: contiguous labels from the sorted category ids, crowd regions left out of the targets.

    Boxes are clipped to their image (its ``width`` / ``height`` entry); boxes smaller than ``min_box_size`` after
    clipping are dropped, and a box that is not four finite numbers is an error naming the annotation. With
    ``train=True`` images without a usable (non-crowd, non-empty) box are skipped. Items follow the task
    model contract: ``{"inputs": uint8 [3, H, W], "data_samples": {..., "boxes", "labels", "masks"}}``.
    """

    def __init__(
        self,
        ann_file: str | Path,
        img_dir: str | Path,
        transforms: A.Compose | None = None,
        train: bool = False,
        with_mask: bool = True,
        min_box_size: float = 1.0,
    ) -> None:
        self.ann_file = Path(ann_file)
        self.img_dir = Path(img_dir)
        self.transforms = transforms
        self.with_mask = with_mask
        data = load_coco_json(self.ann_file)
        cats = sorted(data["categories"], key=lambda c: c["id"])
        self.cat_ids = [c["id"] for c in cats]
        self.classes = tuple(c["name"] for c in cats)
        label_of = {cid: i for i, cid in enumerate(self.cat_ids)}
        sizes = {im["id"]: (im.get("width"), im.get("height")) for im in data["images"]}
        anns = defaultdict(list)
        for ann in data["annotations"]:
            if ann["category_id"] not in label_of:
                raise ValueError(
                    f"annotation file {self.ann_file}: annotation {ann.get('id')} has category_id "
                    f"{ann['category_id']}, which is not among the categories {self.cat_ids}"
                )
            bbox = _clipped_box(ann, sizes.get(ann["image_id"]), self.ann_file)
            if ann.get("iscrowd", 0) or bbox[2] < min_box_size or bbox[3] < min_box_size:
                continue
            anns[ann["image_id"]].append({**ann, "bbox": bbox, "label": label_of[ann["category_id"]]})
        images = sorted(data["images"], key=lambda im: im["id"])
        if train:
            images = [im for im in images if anns[im["id"]]]
        self.images = images
        self.anns = anns

    @property
    def metainfo(self) -> dict:
        """Class names, saved into checkpoints so inference can label its pictures."""
        return {"classes": self.classes, "cat_ids": self.cat_ids}

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict:
        info = self.images[index]
        path = self.img_dir / info["file_name"]
        image = read_image(path)
        h0, w0 = image.shape[:2]
        anns = self.anns[info["id"]]
        boxes = np.array([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
                          for a in anns], np.float32).reshape(-1, 4)
        boxes[:, 0::2] = boxes[:, 0::2].clip(0, w0)
        boxes[:, 1::2] = boxes[:, 1::2].clip(0, h0)
        labels = np.array([a["label"] for a in anns], np.int64)
        masks = None
        if self.with_mask:
            masks = np.stack([decode_segmentation(a["segmentation"], h0, w0) for a in anns]) if anns else \
                np.zeros((0, h0, w0), np.uint8)
        if self.transforms is not None:
            seed_transforms(self.transforms)
            image, boxes, masks, keep = apply_instance_transforms(self.transforms, image, boxes, masks)
            labels = labels[keep]
        h, w = image.shape[:2]
        sample = {
            "img_id": int(info["id"]),
            "img_path": str(path),
            "ori_shape": (h0, w0),
            "img_shape": (h, w),
            "scale_factor": (w / w0, h / h0),
            "boxes": torch.from_numpy(boxes),
            "labels": torch.from_numpy(labels),
        }
        if masks is not None:
            sample["masks"] = torch.from_numpy(np.ascontiguousarray(masks))
        return {"inputs": torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))), "data_samples": sample}


def _clipped_box(ann: dict, size: tuple | None, ann_file: Path) -> list[float]:
    """An annotation's [x, y, w, h] clipped to its image (when the image entry gives its size); a box that is not four
    finite numbers is an error naming the file, the annotation and the image."""
    bbox = ann.get("bbox")
    if not (isinstance(bbox, list | tuple) and len(bbox) == 4
            and all(isinstance(v, int | float) and math.isfinite(v) for v in bbox)):
        raise ValueError(f"annotation file {ann_file}: annotation {ann.get('id')} of image {ann.get('image_id')} has "
                         f"bbox {bbox!r}; expected four finite numbers [x, y, width, height]")
    x, y, w, h = (float(v) for v in bbox)
    width, height = size or (None, None)
    x2, y2 = x + w, y + h
    if width and height:  # boxes reaching outside the image are cut to it; one wholly outside becomes empty
        x, y, x2, y2 = min(max(x, 0.0), width), min(max(y, 0.0), height), min(max(x2, 0.0), width), \
            min(max(y2, 0.0), height)
    return [x, y, x2 - x, y2 - y]

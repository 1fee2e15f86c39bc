"""Image transforms on albumentations that keep boxes and instance masks consistent."""

from __future__ import annotations

import albumentations as A
import numpy as np
from albumentations.augmentations.crops.transforms import BaseCrop

__all__ = [
    "FixedSizeCrop",
    "apply_instance_transforms",
    "detection_test_transforms",
    "detection_train_transforms",
    "seed_transforms",
]


class FixedSizeCrop(BaseCrop):
    """Random crop of at most ``size`` x ``size``; a smaller side is kept whole (the batch pads it later)."""

    def __init__(self, size: int, p: float = 1.0) -> None:
        super().__init__(p=p)
        self.size = size

    def get_params_dependent_on_data(self, params: dict, data: dict) -> dict:
        """Pick the crop window."""
        h, w = params["shape"][:2]
        ch, cw = min(self.size, h), min(self.size, w)
        y = self.py_random.randint(0, h - ch)
        x = self.py_random.randint(0, w - cw)
        return {"crop_coords": (x, y, x + cw, y + ch)}


def seed_transforms(transforms: A.Compose) -> None:
    """Seed albumentations from numpy's global generator, which the runner seeds per process and worker.

    Albumentations otherwise draws its own entropy, and a run (or a resumed run) would not repeat itself.
    """
    transforms.set_random_seed(int(np.random.randint(2**31)))


def _bbox_params() -> A.BboxParams:
    # ``indices`` follow the boxes through filtering so the masks can be selected alike
    return A.BboxParams(format="pascal_voc", label_fields=["indices"], clip=True, min_area=1.0)


def detection_train_transforms(
    size: int, scale_range: tuple[float, float] = (0.1, 2.0), flip_prob: float = 0.5
) -> A.Compose:
    """Large-scale jitter: flip, longest side to ``size`` x U(scale_range), random crop to ``size``."""
    lo, hi = (max(1, round(size * s)) for s in scale_range)
    return A.Compose(
        [A.HorizontalFlip(p=flip_prob), A.LongestMaxSize(max_size=list(range(lo, hi + 1))), FixedSizeCrop(size)],
        bbox_params=_bbox_params(),
    )


def detection_test_transforms(size: int) -> A.Compose:
    """Longest side to ``size`` (the batch pads to a square later)."""
    return A.Compose([A.LongestMaxSize(max_size=size)], bbox_params=_bbox_params())


def apply_instance_transforms(
    transforms: A.Compose, image: np.ndarray, boxes: np.ndarray, masks: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]:
    """image [H, W, 3], boxes [N, 4] xyxy, masks [N, H, W] -> transformed (image, boxes, masks, kept indices)."""
    data = {"image": image, "bboxes": boxes.reshape(-1, 4), "indices": np.arange(len(boxes))}
    if masks is not None and len(masks):
        data["masks"] = masks
    out = transforms(**data)
    keep = np.asarray(out["indices"], dtype=np.int64)
    new_boxes = np.asarray(out["bboxes"], dtype=np.float32).reshape(-1, 4)
    new_masks = None
    if masks is not None:
        h, w = out["image"].shape[:2]
        new_masks = np.asarray(out["masks"])[keep] if len(masks) else np.zeros((0, h, w), np.uint8)
    return out["image"], new_boxes, new_masks, keep


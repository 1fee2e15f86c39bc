"""Semantic segmentation training transforms on albumentations, as mmsegmentation's ADE20K pipeline does them.

RandomResize (keep ratio, scale x U(ratio_range)) -> RandomCrop with ``cat_max_ratio`` -> flip -> photometric
distortion -> pad to the crop size with the ignore label. Labels are resized with nearest neighbour and never
blended. Call ``seed_transforms`` (densevit.datasets.transforms) before each use so runs repeat themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import albumentations as A
import cv2
import numpy as np
from albumentations.augmentations.crops.transforms import BaseCrop
from albumentations.core.transforms_interface import DualTransform, ImageOnlyTransform

from densevit.ops.resize import keep_ratio_size, size_pair

__all__ = [
    "CatMaxRatioCrop",
    "PhotoMetricDistortion",
    "RandomKeepRatioResize",
    "class_ratio_ok",
    "seg_train_transforms",
]

# ImageNet mean colour: padding with it becomes ~0 after normalisation, as mmsegmentation pads normalised images.
MEAN_RGB = (124, 116, 104)


class RandomKeepRatioResize(DualTransform):
    """Rescale to ``scale`` x U(ratio_range) with the aspect ratio kept; bilinear image, nearest label."""

    def __init__(
        self, scale: Sequence[int] = (2048, 512), ratio_range: Sequence[float] = (0.5, 2.0), p: float = 1.0
    ) -> None:
        super().__init__(p=p)
        self.scale = tuple(scale)
        self.ratio_range = tuple(ratio_range)

    def get_params_dependent_on_data(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        """Draw the ratio and compute the output size."""
        h, w = params["shape"][:2]
        ratio = self.py_random.uniform(*self.ratio_range)
        target = (int(self.scale[0] * ratio), int(self.scale[1] * ratio))
        return {"size": keep_ratio_size(h, w, target)}

    def apply(self, img: np.ndarray, size: tuple[int, int], **params: Any) -> np.ndarray:
        """Bilinear resize of the image."""
        return cv2.resize(img, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)

    def apply_to_mask(self, mask: np.ndarray, size: tuple[int, int], **params: Any) -> np.ndarray:
        """Nearest resize of the label map."""
        return cv2.resize(mask, (size[1], size[0]), interpolation=cv2.INTER_NEAREST)


def class_ratio_ok(label: np.ndarray, cat_max_ratio: float, ignore_index: int = 255) -> bool:
    """True when the crop holds two or more classes and none covers ``cat_max_ratio`` of its labelled pixels."""
    counts = np.bincount(label.ravel())
    if ignore_index < len(counts):
        counts[ignore_index] = 0
    counts = counts[counts > 0]
    return len(counts) > 1 and counts.max() / counts.sum() < cat_max_ratio


class CatMaxRatioCrop(BaseCrop):
    """Random crop of at most ``size`` (h, w) where no class exceeds ``cat_max_ratio`` (mmseg's RandomCrop).

    Up to ``max_tries`` windows are redrawn while the condition fails; the last one drawn is kept either way.
    A side smaller than the crop is kept whole (pad afterwards).
    """

    def __init__(
        self,
        size: int | Sequence[int],
        cat_max_ratio: float = 0.75,
        ignore_index: int = 255,
        max_tries: int = 10,
        p: float = 1.0,
    ) -> None:
        super().__init__(p=p)
        self.size = size_pair(size)
        self.cat_max_ratio = cat_max_ratio
        self.ignore_index = ignore_index
        self.max_tries = max_tries

    def _window(self, h: int, w: int) -> tuple[int, int, int, int]:
        ch, cw = self.size
        y = self.py_random.randint(0, max(h - ch, 0))
        x = self.py_random.randint(0, max(w - cw, 0))
        return x, y, x + min(cw, w), y + min(ch, h)

    def get_params_dependent_on_data(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        """Pick the crop window, redrawing while one class dominates the label crop."""
        h, w = params["shape"][:2]
        box = self._window(h, w)
        label = data.get("mask")
        if label is not None and self.cat_max_ratio < 1.0:
            for _ in range(self.max_tries):
                x1, y1, x2, y2 = box
                if class_ratio_ok(label[y1:y2, x1:x2], self.cat_max_ratio, self.ignore_index):
                    break
                box = self._window(h, w)
        return {"crop_coords": box}


class PhotoMetricDistortion(ImageOnlyTransform):
    """mmsegmentation's photometric distortion on uint8 RGB, each step with probability 1/2.

    Brightness +U(-32, 32); contrast x U(0.5, 1.5) before or after (coin flip) the HSV steps; saturation
    x U(0.5, 1.5); hue + randint(-18, 17) (OpenCV hue range 0-179). Values are clipped to 0-255 after each step.
    """

    def __init__(
        self,
        brightness_delta: int = 32,
        contrast_range: Sequence[float] = (0.5, 1.5),
        saturation_range: Sequence[float] = (0.5, 1.5),
        hue_delta: int = 18,
        p: float = 1.0,
    ) -> None:
        super().__init__(p=p)
        self.brightness_delta = brightness_delta
        self.contrast_range = tuple(contrast_range)
        self.saturation_range = tuple(saturation_range)
        self.hue_delta = hue_delta

    def get_params(self) -> dict[str, Any]:
        """Draw every coin and factor up front (None: step skipped)."""
        rnd = self.py_random

        def maybe(draw: Any) -> Any:
            return draw() if rnd.random() < 0.5 else None

        return {
            "beta": maybe(lambda: rnd.uniform(-self.brightness_delta, self.brightness_delta)),
            "contrast_first": rnd.random() < 0.5,
            "contrast": maybe(lambda: rnd.uniform(*self.contrast_range)),
            "saturation": maybe(lambda: rnd.uniform(*self.saturation_range)),
            # numpy's randint(-d, d) in the reference excludes d
            "hue": maybe(lambda: rnd.randint(-self.hue_delta, self.hue_delta - 1)),
        }

    def apply(self, img: np.ndarray, beta: float | None, contrast_first: bool, contrast: float | None,
              saturation: float | None, hue: int | None, **params: Any) -> np.ndarray:
        """Apply the drawn distortions in the reference order."""
        if beta is not None:
            img = _affine_uint8(img, 1.0, beta)
        if contrast is not None and contrast_first:
            img = _affine_uint8(img, contrast, 0.0)
        if saturation is not None:
            hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)
            hsv[..., 1] = _affine_uint8(hsv[..., 1], saturation, 0.0)
            img = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
        if hue is not None:
            hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)
            hsv[..., 0] = (hsv[..., 0].astype(np.int64) + hue) % 180
            img = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
        if contrast is not None and not contrast_first:
            img = _affine_uint8(img, contrast, 0.0)
        return img


def _affine_uint8(img: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    """img * alpha + beta in float32, clipped and truncated back to uint8 (mmseg's ``convert``)."""
    return np.clip(img.astype(np.float32) * alpha + beta, 0, 255).astype(np.uint8)


def seg_train_transforms(
    scale: Sequence[int] = (2048, 512),
    ratio_range: Sequence[float] = (0.5, 2.0),
    crop_size: int | Sequence[int] = 512,
    cat_max_ratio: float = 0.75,
    flip_prob: float = 0.5,
    photometric: bool = True,
    ignore_index: int = 255,
    pad_value: Sequence[int] = MEAN_RGB,
) -> A.Compose:
    """The ADE20K training pipeline; ``scale`` is (long, short) before the random ratio, ``crop_size`` (h, w)."""
    ch, cw = size_pair(crop_size)
    steps: list[A.BasicTransform] = [
        RandomKeepRatioResize(scale, ratio_range),
        CatMaxRatioCrop((ch, cw), cat_max_ratio, ignore_index),
        A.HorizontalFlip(p=flip_prob),
    ]
    if photometric:
        steps.append(PhotoMetricDistortion())
    steps.append(A.PadIfNeeded(min_height=ch, min_width=cw, position="top_left", border_mode=cv2.BORDER_CONSTANT,
                               fill=tuple(pad_value), fill_mask=ignore_index))
    return A.Compose(steps)

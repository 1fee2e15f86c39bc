"""Depth training augmentation (BTS / Monocular-Depth-Estimation-Toolbox NYUv2 recipe) on albumentations.

The depth map travels as albumentations' ``mask`` (float32 metres), so geometric steps move it with the image
(nearest-neighbour, zero = invalid where rotation uncovers the border) and colour steps leave it alone.
"""

from __future__ import annotations

import albumentations as A
import cv2
import numpy as np

__all__ = ["NYU_BORDER_CROP", "apply_depth_transforms", "depth_train_transforms"]

# Rows 45..471 and columns 43..607 of a 480x640 NYUv2 frame: outside it the projected Kinect depth has a
# white border with no measurements (top, bottom, left, right; bottom/right exclusive).
NYU_BORDER_CROP: tuple[int, int, int, int] = (45, 472, 43, 608)


def depth_train_transforms(
    resize: tuple[int, int] | None = None,
    crop_size: tuple[int, int] | None = (416, 544),
    border_crop: tuple[int, int, int, int] | None = NYU_BORDER_CROP,
    rotate_limit: float = 2.5,
    rotate_prob: float = 0.5,
    flip_prob: float = 0.5,
    color_prob: float = 0.5,
    gamma_range: tuple[float, float] = (0.9, 1.1),
    brightness_range: tuple[float, float] = (0.75, 1.25),
    color_range: tuple[float, float] = (0.9, 1.1),
) -> A.Compose:
    """Optional resize to ``resize`` (h, w), fixed border crop, small rotation, flip, random ``crop_size`` (h, w)
    crop, then colour jitter.

    NYUv2 defaults: border crop [45:472, 43:608], rotation +-2.5 degrees (p 0.5), flip p 0.5, crop 416x544 and,
    with p 0.5, gamma, brightness and per-channel colour factors drawn from the given ranges, no resize. ``None``
    skips the resize, the border crop or the random crop (small synthetic images).
    """
    steps: list[A.BasicTransform] = []
    if resize is not None:
        steps.append(A.Resize(height=resize[0], width=resize[1], interpolation=cv2.INTER_LINEAR,
                              mask_interpolation=cv2.INTER_NEAREST))
    if border_crop is not None:
        top, bottom, left, right = border_crop
        steps.append(A.Crop(x_min=left, y_min=top, x_max=right, y_max=bottom))
    if rotate_limit > 0:
        steps.append(A.Rotate(limit=rotate_limit, interpolation=cv2.INTER_LINEAR, mask_interpolation=cv2.INTER_NEAREST,
                              border_mode=cv2.BORDER_CONSTANT, fill=0, fill_mask=0, p=rotate_prob))
    steps.append(A.HorizontalFlip(p=flip_prob))
    if crop_size is not None:
        steps.append(A.RandomCrop(height=crop_size[0], width=crop_size[1]))
    steps.append(A.Sequential([
        A.RandomGamma(gamma_limit=(100 * gamma_range[0], 100 * gamma_range[1]), p=1.0),
        A.ColorJitter(brightness=brightness_range, contrast=(1.0, 1.0), saturation=(1.0, 1.0), hue=(0.0, 0.0),
                      p=1.0),
        A.MultiplicativeNoise(multiplier=color_range, per_channel=True, elementwise=False, p=1.0),
    ], p=color_prob))
    return A.Compose(steps)


def apply_depth_transforms(
    transforms: A.Compose, image: np.ndarray, depth: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """image: uint8 [H, W, 3], depth: float32 [H, W] -> both transformed together."""
    out = transforms(image=image, mask=depth)
    return out["image"], out["mask"]

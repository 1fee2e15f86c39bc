"""Restoration pictures: the input beside the restored image, with a zoomed crop of both where they differ most."""

from __future__ import annotations

import cv2
import numpy as np
import torch

__all__ = ["draw_comparison", "most_changed_box"]

_FRAME = (255, 64, 64)  # RGB of the zoom box and the separators


def _hwc(image: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(image, torch.Tensor):  # [3, H, W] uint8
        image = image.detach().cpu().permute(1, 2, 0).numpy()
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an RGB uint8 image, found {image.dtype} with shape {list(image.shape)}")
    return image


def most_changed_box(before: np.ndarray, after: np.ndarray, size: int) -> tuple[int, int]:
    """Top-left (y, x) of the ``size`` x ``size`` window where two [H, W, 3] images differ most (mean |a - b|)."""
    diff = np.abs(before.astype(np.float32) - after.astype(np.float32)).mean(axis=2)
    box_sum = cv2.boxFilter(diff, -1, (size, size), normalize=False, anchor=(0, 0), borderType=cv2.BORDER_CONSTANT)
    valid = box_sum[: diff.shape[0] - size + 1, : diff.shape[1] - size + 1]  # windows inside the image
    y, x = np.unravel_index(int(np.argmax(valid)), valid.shape)
    return int(y), int(x)


def _label(panel: np.ndarray, text: str) -> None:
    scale = max(0.4, panel.shape[1] / 700)
    thickness = max(1, round(scale * 1.5))
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    cv2.rectangle(panel, (0, 0), (w + 8, h + base + 8), (0, 0, 0), -1)
    cv2.putText(panel, text, (4, h + 4), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness, cv2.LINE_AA)


def draw_comparison(image: np.ndarray | torch.Tensor, restored: np.ndarray | torch.Tensor,
                    zoom_fraction: float = 0.25, zoom: bool = True) -> np.ndarray:
    """RGB picture: input | restored on top, the same zoomed crop of each below (RGB uint8 [H', W', 3]).

    An input smaller than the output (super-resolution) is shown enlarged by nearest neighbours, pixel for pixel.
    The crop (``zoom_fraction`` of the shorter side) is where the restoration changed the image most;
    ``zoom=False`` draws the top row alone (video frames, where the crop would jump from frame to frame).
    """
    image, restored = _hwc(image), _hwc(restored)
    h, w = restored.shape[:2]
    if image.shape[:2] != (h, w):
        image = cv2.resize(image, (w, h), interpolation=cv2.INTER_NEAREST)
    top = [image.copy(), restored.copy()]
    if zoom:
        size = max(8, int(min(h, w) * zoom_fraction))
        y, x = most_changed_box(image, restored, size)
        bottom = [cv2.resize(p[y : y + size, x : x + size], (w, w), interpolation=cv2.INTER_NEAREST)  # square crops
                  for p in (image, restored)]
        for panel in top:
            cv2.rectangle(panel, (x, y), (x + size - 1, y + size - 1), _FRAME, max(1, min(h, w) // 200))
        for panel in bottom:
            _label(panel, f"zoom x{w / size:.1f}")
    for panel, name in zip(top, ("input", "restored"), strict=True):
        _label(panel, name)
    row = np.concatenate([top[0], np.full((h, 4, 3), _FRAME, np.uint8), top[1]], axis=1)
    if not zoom:
        return row
    bottom_row = np.concatenate([bottom[0], np.full((w, 4, 3), _FRAME, np.uint8), bottom[1]], axis=1)
    return np.concatenate([row, np.full((4, row.shape[1], 3), _FRAME, np.uint8), bottom_row], axis=0)

"""Colours shared by the drawings: one well-separated colour per class."""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["class_colors"]


def class_colors(num: int) -> np.ndarray:
    """``num`` well-separated RGB colours (golden-ratio hues), uint8 [num, 3]."""
    hues = (np.arange(num) * 0.618033988749895 * 180).astype(np.int64) % 180
    hsv = np.stack([hues, np.full(num, 200), np.full(num, 255)], 1).astype(np.uint8)[None]
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0]

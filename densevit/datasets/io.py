"""Reading image files for every dataset, the Python API and the tools."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

__all__ = ["read_image"]


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as RGB uint8 [H, W, 3]; a missing or unreadable file raises naming it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file {path} does not exist")
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise OSError(f"image file {path} could not be decoded (corrupt or not an image)")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)

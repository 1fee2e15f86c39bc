"""Reading files for every dataset, evaluator, the Python API and the tools: images and JSON, with errors that
name the file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np

__all__ = ["decode_image", "read_image", "read_json"]


def _existing(path: str | Path, what: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} file {path} does not exist")
    return path


def decode_image(path: str | Path, flags: int, what: str = "image") -> np.ndarray:
    """Decode an image file with OpenCV's ``flags`` (as stored: BGR for colour); a missing or undecodable file
    raises naming it as a ``what`` file."""
    path = _existing(path, what)
    img = cv2.imread(str(path), flags)
    if img is None:
        raise OSError(f"{what} file {path} could not be decoded (corrupt or not an image)")
    return img


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as RGB uint8 [H, W, 3]; a missing or unreadable file raises naming it."""
    return cv2.cvtColor(decode_image(path, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def read_json(path: str | Path, what: str) -> Any:
    """Load a JSON file; a missing or malformed file raises naming it as a ``what`` file."""
    path = _existing(path, what)
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{what} file {path} is not valid JSON: {err}") from err

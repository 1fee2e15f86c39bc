"""Reading files for every dataset, evaluator, the Python API and the tools: images and JSON, with errors that
name the file."""

from __future__ import annotations

import json
from collections.abc import Collection
from pathlib import Path
from typing import Any

import cv2
import numpy as np

__all__ = ["CorruptImageError", "ImageReader", "decode_image", "read_image", "read_json"]


class CorruptImageError(OSError):
    """An image file that is truncated or cannot be decoded."""


# Where a complete file ends: JPEG's end-of-image marker, PNG's IEND chunk. Decoders fill a truncated file's missing
# rows with grey and only warn on stderr (libjpeg's "Premature end of JPEG file"), without naming it.
_END_MARKERS = {b"\xff\xd8": (b"\xff\xd9", "JPEG end-of-image marker"),
                b"\x89PNG": (b"IEND\xaeB`\x82", "PNG IEND chunk")}


def _check_complete(data: bytes, path: Path, what: str) -> None:
    for magic, (end, name) in _END_MARKERS.items():
        # a few cameras append a trailer after the end marker: look for it near the end, not only at the end
        if data.startswith(magic) and end not in data[-4096:]:
            raise CorruptImageError(f"{what} file {path} is truncated (no {name}): its missing part would be read "
                                    "as grey; re-download or re-encode it, or skip such files (on_corrupt_image)")


def _existing(path: str | Path, what: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} file {path} does not exist")
    return path


def decode_image(path: str | Path, flags: int, what: str = "image") -> np.ndarray:
    """Decode an image file with OpenCV's ``flags`` (as stored: BGR for colour); a missing, truncated or
    undecodable file raises naming it as a ``what`` file (``CorruptImageError`` for the last two)."""
    path = _existing(path, what)
    data = path.read_bytes()
    _check_complete(data, path, what)
    img = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if img is None:
        raise CorruptImageError(f"{what} file {path} could not be decoded (corrupt or not an image)")
    return img


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as RGB uint8 [H, W, 3]; a missing or unreadable file raises naming it."""
    return cv2.cvtColor(decode_image(path, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


class ImageReader:
    """``read_image``, optionally keeping each decoded image in memory after its first read (``cache=True``).

    For datasets small enough to hold decoded (the demo's 1,000 images are 200 MB), where decoding is most of a
    data worker's time; each worker process holds its own copy. Cached images are read-only, so a pipeline step
    that would change one in place fails instead of corrupting later samples.
    """

    def __init__(self, cache: bool = False) -> None:
        self._images: dict[str, np.ndarray] | None = {} if cache else None

    def __call__(self, path: str | Path) -> np.ndarray:
        """RGB uint8 [H, W, 3] of the image at ``path``."""
        if self._images is None:
            return read_image(path)
        image = self._images.get(str(path))
        if image is None:
            image = read_image(path)
            image.setflags(write=False)
            self._images[str(path)] = image
        return image


def read_json(path: str | Path, what: str) -> Any:
    """Load a JSON file; a missing or malformed file raises naming it as a ``what`` file."""
    path = _existing(path, what)
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{what} file {path} is not valid JSON: {err}") from err


def read_coco_results(path: str | Path, keys: Collection[str], what: str = "box") -> list[dict]:
    """A COCO result file (a JSON list of detections, as a detector writes them), each entry holding ``keys``; a
    file of another shape raises naming the file and the first entry that lacks a key."""
    entries = read_json(path, what)
    if not isinstance(entries, list):
        raise ValueError(f"{what} file {path}: expected a COCO result list, found {type(entries).__name__}")
    for i, entry in enumerate(entries):
        missing = set(keys) - set(entry) if isinstance(entry, dict) else set(keys)
        if missing:
            raise ValueError(f"{what} file {path}: entry {i} lacks {sorted(missing)}")
    return entries

"""Putting pictures together and encoding them: panels side by side with titles, PNG bytes."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

__all__ = ["png_bytes", "side_by_side"]


def _titled(picture: np.ndarray, text: str) -> np.ndarray:
    """``picture`` below a white strip with ``text`` in black, widened with white to the text when narrower."""
    scale = max(0.4, min(1.0, picture.shape[1] / 500))
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    width = max(picture.shape[1], tw + 8)
    strip = np.full((th + base + 8, width, 3), 255, np.uint8)
    cv2.putText(strip, text, (4, th + 4), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([strip, np.pad(picture, ((0, 0), (0, width - picture.shape[1]), (0, 0)),
                                         constant_values=255)])


def side_by_side(*pictures: np.ndarray, titles: Sequence[str] | None = None, gap: int = 0) -> np.ndarray:
    """RGB uint8 pictures [H, W, 3] left to right on white, top-aligned, ``gap`` white columns apart; ``titles``
    (one per picture) are written above them."""
    if titles is not None:
        if len(titles) != len(pictures):
            raise ValueError(f"side_by_side: {len(titles)} titles for {len(pictures)} pictures")
        pictures = tuple(_titled(p, t) for p, t in zip(pictures, titles, strict=True))
    height = max(p.shape[0] for p in pictures)
    padded = [np.pad(p, ((0, height - p.shape[0]), (0, gap if i < len(pictures) - 1 else 0), (0, 0)),
                     constant_values=255) for i, p in enumerate(pictures)]
    return np.concatenate(padded, axis=1)


def png_bytes(picture: np.ndarray | bytes) -> bytes:
    """RGB [H, W, 3] or single-channel uint8/uint16 [H, W] -> PNG file contents; bytes are a PNG already (a
    palette PNG of ``label_palette_png``) and pass through."""
    if isinstance(picture, bytes):
        return picture
    if picture.ndim == 3:
        picture = cv2.cvtColor(picture, cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(".png", picture)
    if not ok:
        raise OSError(f"could not encode a {picture.dtype} {list(picture.shape)} array as PNG")
    return encoded.tobytes()

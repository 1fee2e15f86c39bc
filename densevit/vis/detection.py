"""Detection pictures: boxes, labels, scores and instance masks drawn over an image."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from densevit.vis.colors import class_colors

__all__ = ["draw_detections"]


def draw_detections(
    image: np.ndarray,
    boxes: np.ndarray,
    labels: np.ndarray,
    scores: np.ndarray,
    class_names: Sequence[str],
    masks: np.ndarray | None = None,
    score_thr: float = 0.3,
    alpha: float = 0.45,
) -> np.ndarray:
    """image: RGB uint8 [H, W, 3]; boxes [N, 4] xyxy; masks [N, H, W] bool -> annotated RGB copy."""
    out = image.copy()
    colors = class_colors(max(len(class_names), 1))
    keep = np.flatnonzero(scores >= score_thr)
    keep = keep[np.argsort(scores[keep])]  # best drawn last, on top
    thick = max(1, round(max(image.shape[:2]) / 400))
    for i in keep:
        color = colors[int(labels[i]) % len(colors)]
        if masks is not None:
            m = masks[i].astype(bool)
            out[m] = (out[m] * (1 - alpha) + color * alpha).astype(np.uint8)
    for i in keep:
        color = tuple(int(c) for c in colors[int(labels[i]) % len(colors)])
        x1, y1, x2, y2 = (round(float(v)) for v in boxes[i])
        cv2.rectangle(out, (x1, y1), (x2, y2), color, thick)
    placed: list[tuple[int, int, int, int]] = []
    for i in keep[::-1]:  # the best detections choose their label's place first
        color = tuple(int(c) for c in colors[int(labels[i]) % len(colors)])
        name = class_names[int(labels[i])] if int(labels[i]) < len(class_names) else str(int(labels[i]))
        text = f"{name} {scores[i]:.2f}"
        scale = 0.4 * thick
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        x, y = _label_place(boxes[i], tw, th + base, out.shape[:2], placed)
        placed.append((x, y, x + tw, y + th + base))
        cv2.rectangle(out, (x, y), (x + tw, y + th + base), color, -1)
        cv2.putText(out, text, (x, y + th), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return out


def _label_place(box: np.ndarray, w: int, h: int, size: tuple[int, int],
                 placed: list[tuple[int, int, int, int]]) -> tuple[int, int]:
    """Top-left corner of a w x h label for ``box``: above it, else inside its top, moved down past labels already
    placed; always inside the image."""
    height, width = size
    x = min(max(round(float(box[0])), 0), max(width - w, 0))
    top = round(float(box[1]))
    y = top - h if top - h >= 0 else top
    for _ in range(len(placed) + 1):
        y = min(max(y, 0), max(height - h, 0))
        hit = next((r for r in placed if x < r[2] and r[0] < x + w and y < r[3] and r[1] < y + h), None)
        if hit is None:
            break
        y = hit[3]
    return x, y

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
        name = class_names[int(labels[i])] if int(labels[i]) < len(class_names) else str(int(labels[i]))
        text = f"{name} {scores[i]:.2f}"
        scale = 0.4 * thick
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        ty = max(y1, th + base)
        cv2.rectangle(out, (x1, ty - th - base), (x1 + tw, ty), color, -1)
        cv2.putText(out, text, (x1, ty - base), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return out

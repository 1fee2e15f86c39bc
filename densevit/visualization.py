"""Pictures people look at: detections drawn over images, training loss curves."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

__all__ = ["class_colors", "draw_detections", "plot_loss_curves"]


def class_colors(num: int) -> np.ndarray:
    """``num`` well-separated RGB colours (golden-ratio hues), uint8 [num, 3]."""
    hues = (np.arange(num) * 0.618033988749895 * 180).astype(np.int64) % 180
    hsv = np.stack([hues, np.full(num, 200), np.full(num, 255)], 1).astype(np.uint8)[None]
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0]


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


def plot_loss_curves(scalars_json: str | Path, out_png: str | Path, keys: Sequence[str] | None = None) -> Path:
    """Plot the losses mmengine logged (``vis_data/scalars.json``) against the iteration; returns the PNG path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: dict[str, tuple[list, list]] = {}
    for line in Path(scalars_json).read_text().splitlines():
        rec = json.loads(line)
        if "step" not in rec:
            continue
        for k, v in rec.items():
            if (keys is None and k.startswith("loss")) or (keys is not None and k in keys):
                series.setdefault(k, ([], []))
                series[k][0].append(rec["step"])
                series[k][1].append(v)
    fig, ax = plt.subplots(figsize=(7, 4))
    for k, (x, y) in sorted(series.items()):
        ax.plot(x, y, label=k, lw=1.2 if k == "loss" else 0.8)
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return Path(out_png)

"""Segmentation pictures: a colour overlay of a label map with a legend, and raw label PNG encoding."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch

from densevit.vis.colors import class_colors

__all__ = ["draw_segmentation", "label_palette_png", "plot_confusion_matrix", "row_normalised", "sem_seg_to_png"]

_FONT = cv2.FONT_HERSHEY_SIMPLEX


def _numpy(sem_seg: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(sem_seg, torch.Tensor):
        sem_seg = sem_seg.detach().cpu().numpy()
    sem_seg = np.asarray(sem_seg)
    if sem_seg.ndim != 2 or not np.issubdtype(sem_seg.dtype, np.integer):
        raise ValueError(f"expected an integer label map [H, W], found {sem_seg.dtype} {list(sem_seg.shape)}")
    return sem_seg


def _legend(labels: Sequence[int], class_names: Sequence[str], colors: np.ndarray, height: int) -> np.ndarray:
    """White panel listing each label's colour swatch and name, at least ``height`` rows tall: RGB uint8."""
    scale, row, pad = 0.45, 18, 6
    names = [class_names[i] if i < len(class_names) else str(i) for i in labels]
    text_w = max((cv2.getTextSize(n, _FONT, scale, 1)[0][0] for n in names), default=0)
    panel = np.full((max(height, pad + row * len(labels)), pad * 3 + row + text_w, 3), 255, np.uint8)
    for k, (label, name) in enumerate(zip(labels, names, strict=True)):
        y = pad + k * row
        color = tuple(int(c) for c in colors[label % len(colors)])
        cv2.rectangle(panel, (pad, y), (pad + row - 4, y + row - 4), color, -1)
        cv2.putText(panel, name, (2 * pad + row, y + row - 6), _FONT, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return panel


def draw_segmentation(
    image: np.ndarray,
    sem_seg: np.ndarray | torch.Tensor,
    class_names: Sequence[str],
    alpha: float = 0.5,
    ignore_index: int = 255,
    transparent: Sequence[str] = ("background",),
    legend: bool = True,
) -> np.ndarray:
    """image RGB uint8 [H, W, 3], sem_seg [H, W] class indices -> overlay with a legend on the right: RGB uint8.

    Each class gets its colour blended at ``alpha``; ``ignore_index`` pixels and the classes named in
    ``transparent`` (a background class, by default) are left as they are. The legend lists the tinted classes
    present, most frequent first; ``legend=False`` returns the overlay alone, at the image's size (video frames,
    where a legend that follows the classes present would change the picture's size).
    """
    labels = _numpy(sem_seg)
    if labels.shape != image.shape[:2]:
        raise ValueError(f"label map {list(labels.shape)} does not match the image {list(image.shape[:2])}: "
                         "predictions must be in original image coordinates")
    colors = class_colors(max(len(class_names), int(labels.max(initial=0)) + 1, 1))
    clear = [i for i, name in enumerate(class_names) if name.lower() in {t.lower() for t in transparent}]
    valid = (labels != ignore_index) & ~np.isin(labels, clear)
    out = image.copy()
    tint = colors[np.where(valid, labels, 0)]
    out[valid] = (image[valid] * (1 - alpha) + tint[valid] * alpha).astype(np.uint8)
    if not legend:
        return out
    counts = np.bincount(labels[valid].ravel().astype(np.int64), minlength=1)
    present = [int(i) for i in np.argsort(-counts, kind="stable") if counts[i] > 0]
    panel = _legend(present, class_names, colors, out.shape[0])
    canvas = np.full((panel.shape[0], out.shape[1] + panel.shape[1], 3), 255, np.uint8)
    canvas[: out.shape[0], : out.shape[1]] = out
    canvas[:, out.shape[1]:] = panel
    return canvas


def sem_seg_to_png(sem_seg: np.ndarray | torch.Tensor, offset: int = 0) -> np.ndarray:
    """Label map -> array to write as a raw label PNG: uint8 when the values fit, else uint16.

    ``offset`` is added first (1 gives ADE20K's on-disk convention, where 0 means "other").
    """
    labels = _numpy(sem_seg).astype(np.int64) + offset
    if labels.size and (labels.min() < 0 or labels.max() > 65535):
        raise ValueError(f"label values {labels.min()}..{labels.max()} do not fit a 16-bit PNG")
    return labels.astype(np.uint8 if labels.max(initial=0) <= 255 else np.uint16)


def label_palette_png(sem_seg: np.ndarray | torch.Tensor, num_classes: int) -> bytes:
    """Label map -> an indexed PNG: its pixel values are the class indices (as a raw label PNG holds them) and its
    palette gives each class the overlay's colour, so image viewers show the classes. Beyond 256 values there is
    no palette: a 16-bit raw PNG instead."""
    from PIL import Image

    labels = sem_seg_to_png(sem_seg)
    buffer = io.BytesIO()
    if labels.dtype == np.uint16:
        Image.fromarray(labels).save(buffer, format="PNG")
        return buffer.getvalue()
    picture = Image.fromarray(labels, mode="P")
    picture.putpalette(class_colors(max(num_classes, int(labels.max(initial=0)) + 1, 1))[:256].ravel().tolist())
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def row_normalised(confusion: np.ndarray) -> np.ndarray:
    """Confusion counts [K, K] (rows ground truth) -> each row divided by its sum: the fraction of a class's pixels
    given to each class (rows sum to 1; NaN for a class absent from the ground truth)."""
    totals = confusion.sum(1, keepdims=True).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(totals > 0, confusion / totals, np.nan)


def plot_confusion_matrix(confusion: np.ndarray, class_names: Sequence[str], out_png: str | Path,
                          title: str = "") -> Path:
    """Draw counts [K, K] normalised per ground-truth class (``row_normalised``) as a PNG: rows ground truth,
    columns prediction, class names on both axes, percentages in the cells while they stay readable (K <= 25)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = len(class_names)
    if confusion.shape != (k, k):
        raise ValueError(f"confusion matrix {list(confusion.shape)} does not match {k} class names")
    matrix = row_normalised(confusion)
    side = min(max(5.0, 0.28 * k + 2.5), 60.0)  # inches: names stay legible up to ADE20K's 150 classes
    fontsize = 9 if k <= 25 else 6
    fig, ax = plt.subplots(figsize=(side + 1.2, side))
    shown = ax.imshow(np.nan_to_num(matrix), cmap="Blues", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(k), class_names, rotation=90, fontsize=fontsize)
    ax.set_yticks(range(k), class_names, fontsize=fontsize)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("ground-truth class")
    ax.set_title(title or "confusion matrix (each ground-truth row sums to 1)", fontsize=10)
    if k <= 25:
        for (row, col), value in np.ndenumerate(matrix):
            if np.isfinite(value) and value >= 0.005:
                ax.text(col, row, f"{100 * value:.0f}", ha="center", va="center", fontsize=fontsize - 1,
                        color="white" if value > 0.5 else "black")
    fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    return Path(out_png)

"""Depth pictures: a colour-mapped depth map with a labelled colour bar, and 16-bit PNG encoding."""

from __future__ import annotations

import cv2
import numpy as np
import torch

__all__ = ["depth_colors", "depth_to_png16", "draw_depth"]

_COLORMAP = cv2.COLORMAP_MAGMA
_NUM_TICKS = 5


def _numpy(depth: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(depth, torch.Tensor):
        depth = depth.detach().float().cpu().numpy()
    depth = np.asarray(depth, np.float32)
    if depth.ndim != 2:
        raise ValueError(f"expected a depth map [H, W], found shape {list(depth.shape)}")
    return depth


def depth_colors(depth: np.ndarray, min_depth: float, max_depth: float) -> np.ndarray:
    """Depths [...] -> RGB uint8 [..., 3]: near is bright, far is dark (magma), non-finite values are black."""
    if not min_depth < max_depth:
        raise ValueError(f"need min_depth < max_depth, got {min_depth}, {max_depth}")
    finite = np.isfinite(depth)
    t = np.clip((np.where(finite, depth, max_depth) - min_depth) / (max_depth - min_depth), 0.0, 1.0)
    levels = np.round(255.0 * (1.0 - t)).astype(np.uint8)
    rgb = cv2.cvtColor(cv2.applyColorMap(levels.reshape(-1, 1), _COLORMAP), cv2.COLOR_BGR2RGB)
    rgb = rgb.reshape(*depth.shape, 3)
    rgb[~finite] = 0
    return rgb


def _colour_bar(height: int, min_depth: float, max_depth: float) -> np.ndarray:
    """A white panel [height, w, 3] with the colour scale (min at the top) and tick labels in metres."""
    scale = max(0.3, height / 800)
    thickness = max(1, round(scale * 1.5))
    bar_w = max(8, height // 25)
    margin = max(4, height // 50)
    ticks = np.linspace(min_depth, max_depth, _NUM_TICKS)
    digits = 2 if max_depth - min_depth < 5 else 1
    labels = [f"{v:.{digits}f} m" for v in ticks]
    text_w = max(cv2.getTextSize(s, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)[0][0] for s in labels)
    text_h = cv2.getTextSize(labels[0], cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)[0][1]
    panel = np.full((height, margin * 3 + bar_w + text_w, 3), 255, np.uint8)
    top, bottom = margin + text_h // 2, height - margin - text_h // 2  # room for the first and last label
    span = max(bottom - top, 1)
    column = depth_colors(np.linspace(min_depth, max_depth, span, dtype=np.float32)[:, None], min_depth, max_depth)
    panel[top:top + span, margin:margin + bar_w] = column
    for value, label in zip(ticks, labels, strict=True):
        y = top + round((value - min_depth) / (max_depth - min_depth) * (span - 1))
        cv2.line(panel, (margin + bar_w, y), (margin + bar_w + margin // 2, y), (0, 0, 0), thickness)
        cv2.putText(panel, label, (2 * margin + bar_w, y + text_h // 2), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0),
                    thickness, cv2.LINE_AA)
    return panel


def draw_depth(depth: np.ndarray | torch.Tensor, min_depth: float, max_depth: float) -> np.ndarray:
    """depth [H, W] metres -> RGB uint8 [H, W + bar, 3]: the colour-mapped map with a colour bar on the right."""
    depth = _numpy(depth)
    return np.concatenate([depth_colors(depth, min_depth, max_depth),
                           _colour_bar(depth.shape[0], min_depth, max_depth)], axis=1)


def depth_to_png16(depth: np.ndarray | torch.Tensor, depth_scale: float = 1000.0) -> np.ndarray:
    """depth [H, W] metres -> uint16 [H, W] of round(depth x depth_scale) (millimetres by default); 0 = no data.

    Values beyond the uint16 range saturate at 65535; negative and non-finite values become 0.
    """
    depth = _numpy(depth).astype(np.float64)
    scaled = np.where(np.isfinite(depth), np.round(depth * depth_scale), 0.0)
    return np.clip(scaled, 0, 65535).astype(np.uint16)

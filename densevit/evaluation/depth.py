"""Monocular depth metrics in the BTS / Monocular-Depth-Estimation-Toolbox convention (NYUv2, KITTI).

Per image: clamp the prediction to [min_depth, max_depth] (inf -> max, nan -> min), keep the pixels whose ground
truth lies strictly inside (min_depth, max_depth) and inside the evaluation crop, compute the nine metrics on
them; the set's figures are the means over images. Everything is float64.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from densevit.evaluation.table import format_table

__all__ = ["DEPTH_METRIC_NAMES", "EVAL_CROPS", "DepthEvaluator", "clamp_prediction", "depth_metrics", "eval_mask"]

DEPTH_METRIC_NAMES: tuple[str, ...] = ("d1", "d2", "d3", "abs_rel", "sq_rel", "rmse", "rmse_log", "log10", "silog")
EVAL_CROPS: tuple[str | None, ...] = ("eigen", "garg", None)
# Eigen et al.'s crop of the 480x640 NYUv2 frame (rows 45..470, cols 41..600): the Kinect depth is unreliable
# outside it.
EIGEN_CROP = (45, 471, 41, 601)
EIGEN_FRAME = (480, 640)
# Garg et al.'s KITTI crop as fractions of the frame (top, bottom, left, right).
GARG_CROP = (0.40810811, 0.99189189, 0.03594771, 0.96405229)


def _numpy(x: np.ndarray | torch.Tensor) -> np.ndarray:
    return x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, np.float64)


def clamp_prediction(pred: np.ndarray, min_depth: float, max_depth: float) -> np.ndarray:
    """Prediction [H, W] -> float64 copy clamped to [min_depth, max_depth]; +-inf -> max_depth, nan -> min_depth."""
    out = np.clip(np.asarray(pred, np.float64), min_depth, max_depth)
    # as BTS: any infinity (-inf included, which clip sent to min) becomes max; clip keeps nan, so set it
    out[np.isinf(pred)] = max_depth
    out[np.isnan(pred)] = min_depth
    return out


def eval_mask(gt: np.ndarray, min_depth: float, max_depth: float, crop: str | None = "eigen") -> np.ndarray:
    """Pixels that count: min_depth < gt < max_depth, inside the ``crop`` ("eigen", "garg" or None); bool [H, W]."""
    valid = (gt > min_depth) & (gt < max_depth)
    if crop is None:
        return valid
    h, w = gt.shape
    region = np.zeros_like(valid)
    if crop == "eigen":
        if (h, w) != EIGEN_FRAME:
            raise ValueError(f"the Eigen crop is defined on {EIGEN_FRAME[0]}x{EIGEN_FRAME[1]} NYUv2 frames, found a "
                             f"{h}x{w} depth map; use crop=None (or 'garg' for KITTI)")
        top, bottom, left, right = EIGEN_CROP
    elif crop == "garg":
        top, bottom = int(GARG_CROP[0] * h), int(GARG_CROP[1] * h)
        left, right = int(GARG_CROP[2] * w), int(GARG_CROP[3] * w)
    else:
        raise ValueError(f"crop must be one of {EVAL_CROPS}, got {crop!r}")
    region[top:bottom, left:right] = True
    return valid & region


def depth_metrics(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """The nine metrics of one image from its valid pixels: pred, gt [N] > 0 -> float64 [9] (DEPTH_METRIC_NAMES)."""
    pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    ratio = np.maximum(gt / pred, pred / gt)
    log_diff = np.log(pred) - np.log(gt)
    return np.array([
        np.mean(ratio < 1.25),
        np.mean(ratio < 1.25**2),
        np.mean(ratio < 1.25**3),
        np.mean(np.abs(gt - pred) / gt),
        np.mean((gt - pred) ** 2 / gt),
        np.sqrt(np.mean((gt - pred) ** 2)),
        np.sqrt(np.mean(log_diff**2)),
        np.mean(np.abs(np.log10(gt) - np.log10(pred))),
        # rounding can make the variance a hair negative for a pure scale error (BTS would return nan there)
        100.0 * np.sqrt(max(np.mean(log_diff**2) - np.mean(log_diff) ** 2, 0.0)),
    ])


class DepthEvaluator:
    """Per-image depth metrics averaged over the set: d1, d2, d3, abs_rel, sq_rel, rmse, rmse_log, log10, silog.

    Samples carry ``depth`` (prediction) and ``gt_depth`` (metres), both [H0, W0] at the original resolution.
    NYUv2: min 1e-3, max 10, crop "eigen"; KITTI: max 80, crop "garg"; other data: crop None.
    """

    def __init__(
        self,
        min_depth: float = 1e-3,
        max_depth: float = 10.0,
        crop: str | None = "eigen",
        print_fn: Callable[[str], None] = print,
    ) -> None:
        if crop not in EVAL_CROPS:
            raise ValueError(f"DepthEvaluator: crop must be one of {EVAL_CROPS}, got {crop!r}")
        if not 0 < min_depth < max_depth:
            raise ValueError(f"DepthEvaluator: need 0 < min_depth < max_depth, got {min_depth}, {max_depth}")
        self.min_depth = min_depth
        self.max_depth = max_depth
        self.crop = crop
        self.print_fn = print_fn

    def process(self, sample: dict) -> tuple[float, ...] | None:
        """One image -> its nine metrics (a tuple, DEPTH_METRIC_NAMES order), or None when no pixel is valid."""
        for key in ("depth", "gt_depth"):
            if key not in sample:
                raise KeyError(f"DepthEvaluator: the sample has no {key!r} (keys: {sorted(sample)})")
        pred, gt = _numpy(sample["depth"]), _numpy(sample["gt_depth"])
        if pred.shape != gt.shape or pred.ndim != 2:
            raise ValueError(f"DepthEvaluator: image {sample.get('img_path', sample.get('img_id'))}: prediction "
                             f"{list(pred.shape)} and gt_depth {list(gt.shape)} must be the same [H, W]")
        mask = eval_mask(gt, self.min_depth, self.max_depth, self.crop)
        if not mask.any():
            return None
        pred = clamp_prediction(pred, self.min_depth, self.max_depth)
        return tuple(float(v) for v in depth_metrics(pred[mask], gt[mask]))

    def compute(self, records: Sequence[tuple[float, ...] | None]) -> dict[str, float]:
        """Average the per-image metrics of the images with valid pixels."""
        scored = [r for r in records if r is not None]
        if not scored:
            raise ValueError(f"DepthEvaluator: none of the {len(records)} images has a valid ground-truth pixel "
                             f"in ({self.min_depth}, {self.max_depth}) inside crop {self.crop!r}")
        means = np.mean(np.asarray(scored, np.float64), axis=0)
        metrics = {name: float(v) for name, v in zip(DEPTH_METRIC_NAMES, means, strict=True)}
        skipped = len(records) - len(scored)
        note = f", {skipped} without valid pixels skipped" if skipped else ""
        self.print_fn(f"Depth evaluation on {len(scored)} images (crop {self.crop}{note}):\n"
                      + format_table(DEPTH_METRIC_NAMES, [[f"{v:.4f}" for v in means]]))
        return metrics

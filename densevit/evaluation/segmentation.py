"""Semantic segmentation mIoU exactly as mmsegmentation computes it, in constant memory.

Each image contributes four per-class pixel histograms (intersection, union, predicted area, label area) over
the pixels whose ground truth is not ``ignore_index``; the histograms are summed over the whole set before any
ratio is taken. aAcc = sum(I) / sum(L); IoU_c = I_c / U_c; Acc_c = I_c / L_c; mIoU and mAcc are nan-means over
classes (a class absent from the ground truth but predicted has IoU 0 and counts; a class absent from both is NaN
and skipped). Records are the histograms, never the predictions, so memory does not grow with the set.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "SegmentationEvaluator",
    "class_table",
    "confusion_histograms",
    "confusion_matrix",
    "intersect_and_union",
    "segmentation_metrics",
]


def confusion_matrix(pred: Tensor, gt: Tensor, num_classes: int, ignore_index: int = 255) -> np.ndarray:
    """pred, gt: integer label maps [H, W] -> int64 [K, K] pixel counts, row = ground-truth class, column = predicted.

    Pixels whose ground truth is ``ignore_index`` are dropped first; every other value must be a class index.
    """
    if pred.shape != gt.shape:
        raise ValueError(f"prediction shape {list(pred.shape)} differs from ground truth shape {list(gt.shape)}")
    valid = gt != ignore_index
    pred, gt = pred[valid].long(), gt[valid].long()
    for name, values in (("prediction", pred), ("ground truth", gt)):
        if values.numel() and (values.min() < 0 or values.max() >= num_classes):
            found = torch.unique(values[(values < 0) | (values >= num_classes)])[:10].tolist()
            raise ValueError(
                f"{name} holds values {found} outside the classes 0..{num_classes - 1} (ignore value {ignore_index})"
            )
    counts = torch.bincount(gt * num_classes + pred, minlength=num_classes * num_classes)
    return counts.view(num_classes, num_classes).cpu().numpy().astype(np.int64)


def confusion_histograms(confusion: np.ndarray) -> np.ndarray:
    """Confusion matrix [K, K] (rows ground truth) -> int64 [4, K]: intersection, union, pred area, label area."""
    inter, area_pred, area_label = np.diag(confusion), confusion.sum(0), confusion.sum(1)
    return np.stack([inter, area_pred + area_label - inter, area_pred, area_label]).astype(np.int64)


def intersect_and_union(pred: Tensor, gt: Tensor, num_classes: int, ignore_index: int = 255) -> np.ndarray:
    """pred, gt: integer label maps [H, W] -> int64 [4, K] histograms: intersection, union, pred area, label area.

    Pixels whose ground truth is ``ignore_index`` are dropped first; every other value must be a class index.
    """
    return confusion_histograms(confusion_matrix(pred, gt, num_classes, ignore_index))


def segmentation_metrics(hist: np.ndarray) -> dict[str, np.ndarray | float]:
    """Summed histograms [4, K] -> aAcc, mIoU, mAcc (fractions) and per-class IoU, Acc [K] (NaN where undefined)."""
    inter, union, _, label = (row.astype(np.float64) for row in hist)
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = inter / union  # 0 / 0 -> NaN: class absent from prediction and ground truth
        acc = inter / label  # x / 0 -> NaN: class absent from ground truth
    total = label.sum()

    def nanmean(v: np.ndarray) -> float:
        return float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")

    return {
        "aAcc": float(inter.sum() / total) if total else float("nan"),
        "mIoU": nanmean(iou),
        "mAcc": nanmean(acc),
        "IoU": iou,
        "Acc": acc,
    }


def class_table(class_names: Sequence[str], metrics: dict, markdown: bool = False) -> str:
    """Per-class IoU and Acc in percent (``segmentation_metrics``' arrays) as CSV, or as a Markdown table; a class
    absent from ground truth and prediction has empty cells."""
    def cell(v: float) -> str:
        return f"{100 * v:.2f}" if np.isfinite(v) else ""

    rows = [(name, cell(iou), cell(acc)) for name, iou, acc in zip(class_names, metrics["IoU"], metrics["Acc"],
                                                                       strict=True)]
    if markdown:
        return "\n".join(["| class | IoU | Acc |", "|---|---:|---:|", *(f"| {n} | {i} | {a} |" for n, i, a in rows)])
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([("class", "IoU", "Acc"), *rows])
    return out.getvalue()


class SegmentationEvaluator:
    """mIoU / mAcc / aAcc over a set of images (mmsegmentation's IoUMetric), reported x100.

    ``process`` takes one image's ``sem_seg`` (prediction) and ``gt_sem_seg`` [H0, W0] label maps at the original
    resolution and keeps only the four [K] histograms; ``compute`` sums them and prints the per-class table.
    """

    def __init__(
        self,
        num_classes: int | None = None,
        class_names: Sequence[str] | None = None,
        ignore_index: int = 255,
        print_fn: Callable[[str], None] | None = print,
    ) -> None:
        if num_classes is None and class_names is None:
            raise ValueError("SegmentationEvaluator needs num_classes or class_names")
        if num_classes is not None and class_names is not None and len(class_names) != num_classes:
            raise ValueError(f"SegmentationEvaluator: {len(class_names)} class_names for num_classes {num_classes}")
        self.num_classes = num_classes if num_classes is not None else len(class_names)
        self.class_names = tuple(class_names) if class_names is not None else tuple(map(str, range(self.num_classes)))
        self.ignore_index = ignore_index
        self.print_fn = print_fn

    def process(self, sample: dict) -> np.ndarray:
        """One image: ``sem_seg`` and ``gt_sem_seg`` [H, W] -> its int64 [4, K] histograms (the record)."""
        missing = [k for k in ("sem_seg", "gt_sem_seg") if k not in sample]
        if missing:
            raise KeyError(f"SegmentationEvaluator.process: sample lacks {missing}; it has {sorted(sample)}")
        pred, gt = torch.as_tensor(sample["sem_seg"]), torch.as_tensor(sample["gt_sem_seg"])
        try:
            return intersect_and_union(pred, gt, self.num_classes, self.ignore_index)
        except ValueError as err:
            where = sample.get("img_path", sample.get("img_id", "?"))
            raise ValueError(f"image {where}: {err}; predictions and labels must be at the original resolution "
                             "and hold class indices") from err

    def compute(self, records: Sequence[np.ndarray]) -> dict[str, float]:
        """Sum the per-image histograms -> {"aAcc", "mIoU", "mAcc"} in percent; prints the per-class table."""
        if not len(records):
            raise ValueError("SegmentationEvaluator.compute got no records: no image was processed")
        hist = np.sum(np.stack(records), axis=0)  # [4, K]
        if hist.shape != (4, self.num_classes):
            raise ValueError(f"records have shape {list(hist.shape)}, expected [4, {self.num_classes}]")
        metrics = segmentation_metrics(hist)
        if self.print_fn is not None:
            self.print_fn(self.table(metrics))
        return {k: 100.0 * float(metrics[k]) for k in ("aAcc", "mIoU", "mAcc")}

    def table(self, metrics: dict) -> str:
        """Per-class IoU / Acc and the summary, as plain text (percent, 2 decimals)."""
        width = max(12, *(len(n) for n in self.class_names))
        lines = [f"{'class':<{width}} {'IoU':>7} {'Acc':>7}", "-" * (width + 16)]
        for name, iou, acc in zip(self.class_names, metrics["IoU"], metrics["Acc"], strict=True):
            lines.append(f"{name:<{width}} {100 * iou:>7.2f} {100 * acc:>7.2f}")
        lines.append("-" * (width + 16))
        lines.append(f"aAcc {100 * metrics['aAcc']:.2f}  mIoU {100 * metrics['mIoU']:.2f}  "
                     f"mAcc {100 * metrics['mAcc']:.2f}")
        return "\n".join(lines)

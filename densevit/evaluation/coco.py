"""COCO box and mask evaluators that reproduce pycocotools' COCOeval numbers.

Two traps are handled here rather than left to callers: `COCO.loadRes` takes its box path (area = w * h)
whenever a result carries `bbox`, so mask evaluation drops `bbox` first; and `loadRes` crashes on an empty
result list, so zero detections report zeros instead.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pycocotools.mask as mask_utils
import torch

from densevit.datasets.io import read_json
from densevit.evaluation.table import format_table

PrintFn = Callable[[str], None]

BOX_STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")
BACKENDS = ("auto", "pycocotools", "faster_coco_eval")


# ----------------------------------------------------------------------------------------------------
# Shared helpers: files, backends, running COCOeval, naming and printing its stats.
# ----------------------------------------------------------------------------------------------------


class _Backend(NamedTuple):
    name: str
    coco_cls: type
    eval_factory: Callable[..., Any]  # (coco_gt, coco_dt, iou_type) -> COCOeval-like object


def _resolve_backend(backend: str) -> _Backend:
    """Pick the COCO API implementation; "auto" prefers faster-coco-eval when it is installed."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend in ("auto", "faster_coco_eval"):
        try:
            from faster_coco_eval import COCO as FasterCOCO
            from faster_coco_eval import COCOeval_faster
        except ImportError as err:
            if backend == "faster_coco_eval":
                raise ImportError(
                    "backend='faster_coco_eval' needs the faster-coco-eval package "
                    "(pip install faster-coco-eval)"
                ) from err
        else:
            # Its default print function is a logger; print() lets the stdout redirect below silence it.
            return _Backend("faster_coco_eval", FasterCOCO, partial(COCOeval_faster, print_function=print))
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    return _Backend("pycocotools", COCO, COCOeval)


def _check_keys(entries: Any, section: str, keys: Sequence[str], source: str) -> None:
    """Check that `entries` is a list of dicts that all carry `keys`."""
    if not isinstance(entries, list):
        raise ValueError(f"{source}: '{section}' must be a list, found {type(entries).__name__}")
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise ValueError(f"{source}: {section}[{i}] must be a dict, found {type(entry).__name__}")
        missing = [k for k in keys if k not in entry]
        if missing:
            raise ValueError(f"{source}: {section}[{i}] lacks keys {missing} (has {sorted(entry)})")


def _load_ground_truth(ann_file: str | Path, ann_keys: Sequence[str], backend: _Backend) -> Any:
    """Read and validate a COCO annotation file and index it with the backend's COCO class."""
    dataset = read_json(ann_file, "COCO annotation")
    source = f"COCO annotation file {ann_file}"
    if not isinstance(dataset, dict):
        raise ValueError(f"{source}: expected a JSON object, found {type(dataset).__name__}")
    missing = [k for k in ("images", "annotations", "categories") if k not in dataset]
    if missing:
        raise ValueError(f"{source}: missing top-level keys {missing} (has {sorted(dataset)})")
    _check_keys(dataset["images"], "images", ("id", "height", "width"), source)
    _check_keys(dataset["categories"], "categories", ("id", "name"), source)
    _check_keys(dataset["annotations"], "annotations", ann_keys, source)
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress unconditionally
        coco_gt = backend.coco_cls()
        coco_gt.dataset = dataset
        coco_gt.createIndex()
    return coco_gt


def _load_results(results: list[dict] | str | Path) -> list[dict]:
    """Accept a result list or the path of a COCO result JSON file."""
    if isinstance(results, (str, Path)):
        loaded = read_json(results, "COCO result")
        if not isinstance(loaded, list):
            found = type(loaded).__name__
            raise ValueError(f"COCO result file {results}: expected a JSON list, found {found}")
        return loaded
    return list(results)


def _check_results(results: list[dict], coco_gt: Any, keys: Sequence[str]) -> None:
    """Check result entries before loadRes, whose own failures are bare asserts."""
    _check_keys(results, "results", ("image_id", "category_id", "score", *keys), "COCO results")
    unknown_imgs = {r["image_id"] for r in results} - set(coco_gt.imgs)
    if unknown_imgs:
        raise ValueError(f"COCO results: image ids {sorted(unknown_imgs)[:10]} are not in the ground truth")
    unknown_cats = {r["category_id"] for r in results} - set(coco_gt.cats)
    if unknown_cats:
        # COCOeval would silently ignore them; it is almost always a label -> category id mapping bug.
        raise ValueError(
            f"COCO results: category ids {sorted(unknown_cats)} are not in the ground truth "
            f"(known: {sorted(coco_gt.cats)})"
        )


def _without(results: list[dict], keys: Sequence[str]) -> list[dict]:
    """Shallow copies of the entries minus `keys`; loadRes writes area/id into the entries it gets."""
    return [{k: v for k, v in r.items() if k not in keys} for r in results]


def _flatten(records: Sequence[Sequence[dict]]) -> list[dict]:
    """Concatenate the per-image result lists returned by `process`."""
    return [entry for record in records for entry in record]


def _run_cocoeval(
    eval_factory: Callable[..., Any],
    coco_gt: Any,
    results: list[dict],
    iou_type: str,
    kpt_sigmas: Sequence[float] | None = None,
) -> Any:
    """Run loadRes + evaluate + accumulate + summarize with the reference parameters; returns the COCOeval."""
    with contextlib.redirect_stdout(io.StringIO()):
        coco_dt = coco_gt.loadRes(results)
        coco_eval = eval_factory(coco_gt, coco_dt, iou_type)
        if kpt_sigmas is not None:
            coco_eval.params.kpt_oks_sigmas = np.asarray(kpt_sigmas, dtype=np.float64)
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    return coco_eval


def _percent(value: float) -> float:
    """COCOeval stat -> percent; its -1 sentinel (no ground truth in that bucket) becomes NaN."""
    return float("nan") if value < 0 else float(value) * 100.0


def stats_to_dict(stats: Sequence[float], names: Sequence[str], prefix: str) -> dict[str, float]:
    """Name the leading COCOeval.stats entries ("bbox_AP", ...) in percent."""
    named = zip(names, stats[: len(names)], strict=True)
    return {f"{prefix}_{name}": _percent(value) for name, value in named}


def _print_summary(metrics: dict[str, float], prefix: str, print_fn: PrintFn) -> None:
    names = [key.removeprefix(f"{prefix}_") for key in metrics]
    print_fn(f"COCO {prefix} evaluation:\n" + format_table(names, [list(metrics.values())]))


def _per_category_table(coco_eval: Any, coco_gt: Any) -> str:
    """AP, AP50, AP75 per category from the accumulated precision [T, R, K, A, M] (area all, last maxDets)."""
    precision = coco_eval.eval["precision"]
    iou_thrs = np.asarray(coco_eval.params.iouThrs)
    t50, t75 = (int(np.argmin(np.abs(iou_thrs - t))) for t in (0.5, 0.75))
    rows = []
    for k, cat_id in enumerate(coco_eval.params.catIds):
        aps = []
        for p in (precision[:, :, k, 0, -1], precision[t50, :, k, 0, -1], precision[t75, :, k, 0, -1]):
            valid = p[p > -1]  # -1 marks categories without ground truth
            aps.append(float(valid.mean()) * 100.0 if valid.size else math.nan)
        rows.append([coco_gt.cats[cat_id]["name"], *aps])
    return format_table(["category", "AP", "AP50", "AP75"], rows)


def _to_numpy(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def mask_to_rle(masks: np.ndarray) -> list[dict]:
    """Encode binary masks [N, H, W] as COCO compressed RLE dicts with str counts (JSON-ready)."""
    if len(masks) == 0:
        return []
    # pycocotools encodes column-major [H, W, N] uint8 stacks.
    rles = mask_utils.encode(np.asfortranarray(masks.transpose(1, 2, 0).astype(np.uint8)))
    for rle in rles:
        rle["counts"] = rle["counts"].decode("ascii")
    return rles


def detection_results(
    image_id: int,
    boxes: np.ndarray,
    scores: np.ndarray,
    labels: np.ndarray,
    cat_ids: Sequence[int],
    rles: Sequence[dict] | None = None,
) -> list[dict]:
    """One image's detections (xyxy boxes, contiguous labels) -> COCO result entries (xywh, category ids)."""
    entries = []
    for i, (box, score, label) in enumerate(zip(np.asarray(boxes).tolist(), scores, labels, strict=True)):
        x1, y1, x2, y2 = box
        entry = {"image_id": image_id, "category_id": cat_ids[int(label)], "bbox": [x1, y1, x2 - x1, y2 - y1],
                 "score": float(score)}
        if rles is not None:
            entry["segmentation"] = rles[i]
        entries.append(entry)
    return entries


def write_results(outfile: Path, results: list[dict], print_fn: PrintFn) -> None:
    """Write COCO result entries as a result JSON file (``COCO.loadRes`` reads it), through a temporary file."""
    outfile.parent.mkdir(parents=True, exist_ok=True)
    tmp = outfile.with_name(f".{outfile.name}.tmp")
    tmp.write_text(json.dumps(results))
    tmp.replace(outfile)
    print_fn(f"{len(results)} COCO results written to {outfile}")


def _image_id(sample: dict, coco_gt: Any) -> int:
    img_id = int(sample["img_id"])
    if img_id not in coco_gt.imgs:
        raise KeyError(f"sample img_id {img_id} is not an image of the ground-truth annotation file")
    return img_id


# ----------------------------------------------------------------------------------------------------
# Evaluators
# ----------------------------------------------------------------------------------------------------


class CocoEvaluator:
    """COCO box and mask AP/AR, numbers identical to pycocotools' COCOeval.

    ``outfile`` also writes the evaluated detections as a COCO result JSON (boxes and RLE masks in one list).
    """

    def __init__(
        self,
        ann_file: str | Path,
        iou_types: Sequence[str] = ("bbox", "segm"),
        backend: str = "auto",
        classwise: bool = True,
        outfile: str | Path | None = None,
        print_fn: PrintFn = print,
    ) -> None:
        iou_types = tuple(iou_types)
        if not iou_types or any(t not in ("bbox", "segm") for t in iou_types):
            raise ValueError(f"iou_types must be a non-empty subset of ('bbox', 'segm'), got {iou_types}")
        self.iou_types = iou_types
        self.classwise = classwise
        self.outfile = None if outfile is None else Path(outfile)
        self.print_fn = print_fn
        self._backend = _resolve_backend(backend)
        self.backend = self._backend.name
        ann_keys = ["id", "image_id", "category_id", "bbox", "area", "iscrowd"]
        if "segm" in iou_types:
            ann_keys.append("segmentation")
        self.coco_gt = _load_ground_truth(ann_file, ann_keys, self._backend)
        # Contiguous training label k <-> cat_ids[k], the mapping the COCO dataset uses.
        self.cat_ids = sorted(self.coco_gt.cats)

    def process(self, sample: dict) -> list[dict]:
        """One image's predictions (original pixels) -> COCO result entries."""
        img_id = _image_id(sample, self.coco_gt)
        boxes = _to_numpy(sample["boxes"]).astype(np.float64).reshape(-1, 4)  # [N, 4] xyxy
        scores = _to_numpy(sample["scores"]).reshape(-1)
        labels = _to_numpy(sample["labels"]).reshape(-1).astype(np.int64)
        if not len(boxes) == len(scores) == len(labels):
            raise ValueError(
                f"img_id {img_id}: boxes, scores and labels differ in length "
                f"({len(boxes)}, {len(scores)}, {len(labels)})"
            )
        if len(labels) and (labels.min() < 0 or labels.max() >= len(self.cat_ids)):
            raise ValueError(
                f"img_id {img_id}: labels must lie in [0, {len(self.cat_ids)}), "
                f"found {labels.min()}..{labels.max()}"
            )
        rles = self._encode_masks(sample, img_id, len(boxes)) if "segm" in self.iou_types else None
        return detection_results(img_id, boxes, scores, labels, self.cat_ids, rles)

    def _encode_masks(self, sample: dict, img_id: int, num: int) -> list[dict]:
        if "masks" not in sample:
            raise KeyError(
                f"img_id {img_id}: 'segm' evaluation needs 'masks' [N, H0, W0] in the sample; "
                "use iou_types=('bbox',) for a box-only model"
            )
        masks = _to_numpy(sample["masks"]).astype(bool)  # [N, H0, W0]
        img = self.coco_gt.imgs[img_id]
        expected = (num, img["height"], img["width"])
        if masks.shape != expected:
            raise ValueError(
                f"img_id {img_id}: masks must be [N, H0, W0] = {list(expected)} in original image pixels, "
                f"found {list(masks.shape)} (undo resizing and padding first)"
            )
        return mask_to_rle(masks)

    def compute(self, records: list[list[dict]]) -> dict[str, float]:
        """Evaluate the per-image result lists returned by `process` (and write them to ``outfile``)."""
        results = _flatten(records)
        if self.outfile is not None:
            write_results(self.outfile, results, self.print_fn)
        return self.evaluate_results(results)

    def evaluate_results(self, results: list[dict] | str | Path) -> dict[str, float]:
        """Evaluate a COCO result list or result JSON file -> {"bbox_AP": ..., "segm_AP": ...} in percent."""
        results = _load_results(results)
        metrics: dict[str, float] = {}
        for iou_type in self.iou_types:
            if not results:
                self.print_fn(f"COCO {iou_type} evaluation: no detections, all metrics are 0")
                metrics.update({f"{iou_type}_{name}": 0.0 for name in BOX_STAT_NAMES})
                continue
            key, dropped = ("bbox", "segmentation") if iou_type == "bbox" else ("segmentation", "bbox")
            _check_results(results, self.coco_gt, (key,))
            # Without `bbox`, loadRes takes the mask path and sets area from the masks (the segm trap).
            selected = _without(results, (dropped,))
            coco_eval = _run_cocoeval(self._backend.eval_factory, self.coco_gt, selected, iou_type)
            type_metrics = stats_to_dict(coco_eval.stats, BOX_STAT_NAMES, iou_type)
            _print_summary(type_metrics, iou_type, self.print_fn)
            if self.classwise:
                table = _per_category_table(coco_eval, self.coco_gt)
                self.print_fn(f"COCO {iou_type} AP per category:\n{table}")
            metrics.update(type_metrics)
        return metrics

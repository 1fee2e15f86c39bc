"""COCO keypoint evaluation (OKS AP) of top-down poses, as mmpose's CocoMetric computes it, on pycocotools.

Top-down models predict one pose per person box. ``process`` keeps each pose with its image id, box id, score and
box area; ``compute`` groups them per image, suppresses duplicates with OKS-NMS (0.9, areas = the padded boxes'
w * h, all joints, as mmpose's ``oks_nms``) and scores the survivors with COCOeval (iouType "keypoints").

Area convention: OKS divides by the ground-truth annotation's ``area`` (pycocotools' only behaviour, xtcocotools'
``use_area=True``, mmpose's default); mmpose's ``use_area=False`` (0.53 x box w * h) is not offered. Results
carry no area, so ``loadRes`` buckets each detection by its keypoints' extent.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from densevit.evaluation.coco import (
    PrintFn,
    _check_results,
    _flatten,
    _image_id,
    _load_ground_truth,
    _load_results,
    _print_summary,
    _resolve_backend,
    _run_cocoeval,
    _to_numpy,
    _without,
    stats_to_dict,
    write_results,
)

__all__ = ["KEYPOINT_STAT_NAMES", "CocoKeypointEvaluator", "oks_nms", "oks_overlaps"]

KEYPOINT_STAT_NAMES = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")
AREA_CONVENTION = "OKS area: the ground-truth annotation's 'area' (pycocotools; xtcocotools use_area=True)"


def oks_overlaps(
    pose: np.ndarray, others: np.ndarray, area: float, other_areas: np.ndarray, sigmas: np.ndarray
) -> np.ndarray:
    """OKS of one pose [K, 2+] against others [N, K, 2+] over all K joints, with the pair's mean area."""
    variances = (2.0 * sigmas) ** 2
    d2 = ((others[:, :, :2] - pose[None, :, :2]) ** 2).sum(-1)  # [N, K]
    mean_area = (area + other_areas[:, None]) / 2.0 + np.spacing(1)
    return np.exp(-d2 / variances / mean_area / 2.0).mean(-1)


def oks_nms(
    keypoints: np.ndarray, scores: np.ndarray, areas: np.ndarray, sigmas: Sequence[float], thr: float = 0.9
) -> list[int]:
    """Greedy OKS-NMS of one image's poses [N, K, 2+]: indexes kept, best first; a pose with OKS > thr to a kept
    one is dropped."""
    sigmas = np.asarray(sigmas, dtype=np.float64)
    # Stable ascending sort reversed: among equal scores the later pose comes first, as mmpose's argsort()[::-1].
    order = np.argsort(scores, kind="stable")[::-1]
    keep = []
    while len(order):
        best, rest = order[0], order[1:]
        keep.append(int(best))
        overlaps = oks_overlaps(keypoints[best], keypoints[rest], areas[best], areas[rest], sigmas)
        order = rest[overlaps <= thr]
    return keep


class CocoKeypointEvaluator:
    """COCO keypoint OKS AP/AR of top-down poses: OKS-NMS per image, then pycocotools' COCOeval.

    ``sigmas`` are the keypoint set's OKS sigmas (``KeypointInfo.sigmas``; COCO's 17 for people). ``nms_thr=None``
    skips OKS-NMS. ``outfile`` also writes the evaluated results as a COCO keypoint result JSON.
    """

    def __init__(
        self,
        ann_file: str | Path,
        sigmas: Sequence[float],
        nms_thr: float | None = 0.9,
        outfile: str | Path | None = None,
        print_fn: PrintFn = print,
    ) -> None:
        self.print_fn = print_fn
        self.nms_thr = nms_thr
        self.outfile = None if outfile is None else Path(outfile)
        self._backend = _resolve_backend("pycocotools")
        ann_keys = ("id", "image_id", "category_id", "bbox", "area", "iscrowd", "keypoints", "num_keypoints")
        self.coco_gt = _load_ground_truth(ann_file, ann_keys, self._backend)
        keypoint_cats = [cat for cat in self.coco_gt.cats.values() if "keypoints" in cat]
        if len(keypoint_cats) != 1:
            raise ValueError(
                f"COCO annotation file {ann_file}: expected exactly one category with a 'keypoints' list, "
                f"found {len(keypoint_cats)}"
            )
        self.cat_id = keypoint_cats[0]["id"]
        self.num_keypoints = len(keypoint_cats[0]["keypoints"])
        self.sigmas = tuple(float(s) for s in sigmas)
        if len(self.sigmas) != self.num_keypoints:
            raise ValueError(
                f"COCO annotation file {ann_file}: category {keypoint_cats[0].get('name')!r} has "
                f"{self.num_keypoints} keypoints, but {len(self.sigmas)} sigmas were given"
            )
        bad = [a["id"] for a in self.coco_gt.anns.values() if len(a["keypoints"]) != 3 * self.num_keypoints]
        if bad:
            raise ValueError(
                f"COCO annotation file {ann_file}: annotations {bad[:5]} do not hold {self.num_keypoints} "
                f"keypoints ({3 * self.num_keypoints} values) as the category declares"
            )

    def process(self, sample: dict) -> list[dict]:
        """One sample's poses -> small records: keypoints [K, 2] (or [N, K, 2]) in original pixels,
        keypoint_scores [K], score, and the padded box ``scale`` (w, h) whose product is the NMS area."""
        img_id = _image_id(sample, self.coco_gt)
        k = self.num_keypoints
        keypoints = _to_numpy(sample["keypoints"]).astype(np.float64)
        if keypoints.shape[-2:] != (k, 2):
            raise ValueError(
                f"img_id {img_id}: keypoints must be [K, 2] or [N, K, 2] with K = {k}, found {list(keypoints.shape)}"
            )
        keypoints = keypoints.reshape(-1, k, 2)
        n = len(keypoints)
        joint_scores = _to_numpy(sample["keypoint_scores"]).astype(np.float64).reshape(n, k)
        scores = _to_numpy(sample["score"]).astype(np.float64).reshape(n)
        if "scale" in sample:
            areas = _to_numpy(sample["scale"]).astype(np.float64).reshape(n, 2).prod(-1)
        else:  # mmpose's fallback: the keypoints' extent
            areas = np.ptp(keypoints[..., 0], -1) * np.ptp(keypoints[..., 1], -1)
        ids = np.asarray(sample.get("ann_id", sample.get("det_id", -1))).reshape(-1)
        return [
            {
                "image_id": img_id,
                "id": int(ids[i] if len(ids) == n else ids[0]),
                "keypoints": np.concatenate([keypoints[i], joint_scores[i][:, None]], -1).reshape(-1).tolist(),
                "score": float(scores[i]),
                "area": float(areas[i]),
            }
            for i in range(n)
        ]

    def coco_results(self, records: list[list[dict]]) -> list[dict]:
        """COCO keypoint result entries from the records: per image sorted by box id, OKS-NMS, no area."""
        per_image: dict[int, list[dict]] = defaultdict(list)
        for entry in _flatten(records):
            per_image[entry["image_id"]].append(entry)
        results = []
        for img_id in sorted(per_image):
            poses = sorted(per_image[img_id], key=lambda e: e["id"])
            if self.nms_thr is not None and poses:
                keypoints = np.array([p["keypoints"] for p in poses]).reshape(len(poses), self.num_keypoints, 3)
                scores = np.array([p["score"] for p in poses])
                areas = np.array([p["area"] for p in poses])
                poses = [poses[i] for i in oks_nms(keypoints, scores, areas, self.sigmas, self.nms_thr)]
            results += [{"image_id": img_id, "category_id": self.cat_id, "keypoints": p["keypoints"],
                         "score": p["score"]} for p in poses]
        return results

    def compute(self, records: list[list[dict]]) -> dict[str, float]:
        """OKS-NMS and evaluate the per-sample records returned by `process`."""
        results = self.coco_results(records)
        if self.outfile is not None:
            write_results(self.outfile, results, self.print_fn)
        return self.evaluate_results(results)

    def evaluate_results(self, results: list[dict] | str | Path) -> dict[str, float]:
        """Evaluate a keypoint result list or result JSON file as given (no NMS) -> {"kpt_AP": ...} in percent."""
        results: list[Any] = _load_results(results)
        self.print_fn(AREA_CONVENTION)
        if not results:
            self.print_fn("COCO keypoint evaluation: no detections, all metrics are 0")
            return {f"kpt_{name}": 0.0 for name in KEYPOINT_STAT_NAMES}
        _check_results(results, self.coco_gt, ("keypoints",))
        bad = [i for i, r in enumerate(results) if len(r["keypoints"]) != 3 * self.num_keypoints]
        if bad:
            raise ValueError(
                f"COCO results: entry {bad[0]} has {len(results[bad[0]]['keypoints'])} keypoint values, "
                f"expected {3 * self.num_keypoints}"
            )
        # A `bbox` would send loadRes down its box path (area = w * h) instead of the keypoint path.
        selected = _without(results, ("bbox", "segmentation", "area"))
        coco_eval = _run_cocoeval(self._backend.eval_factory, self.coco_gt, selected, "keypoints", self.sigmas)
        metrics = stats_to_dict(coco_eval.stats, KEYPOINT_STAT_NAMES, "kpt")
        _print_summary(metrics, "kpt", self.print_fn)
        return metrics

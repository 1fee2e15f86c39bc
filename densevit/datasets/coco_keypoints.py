"""Top-down COCO keypoints: one sample per person box, cropped with the UDP affine, as mmpose 1.x prepares them.

Boxes come from the ground truth (training, or evaluation with ground-truth boxes) or from a detector result file
in COCO result format (evaluation, e.g. ``COCO_val2017_detections_AP_H_56_person.json``). Ground-truth boxes are
clipped to the image (x2 = clip(x + w, 0, W - 1)); crowd annotations, annotations without a labelled joint and
empty boxes are left out, as mmpose does. Every box becomes a centre and a scale: its short side enlarged to the
input's aspect ratio (192 / 256 = 0.75) and both sides x1.25; the crop is ``cv2.warpAffine`` with the UDP matrix
(``densevit.ops.keypoints``), bilinear, zero border.

Training augmentation (``TopDownAugment``, mmpose 1.x's defaults for ViTPose): horizontal flip with the keypoint
set's flip pairs, half-body, then a random shift, scale and rotation of the box. A flip is folded into the crop's
affine (mirroring the image about x -> W - 1 - x), so every crop is one warp of the original image.

The keypoint set (names, skeleton) comes from the file's ``categories`` entry; OKS sigmas, flip pairs and the
upper body from config fields (``densevit.datasets.keypoint_info.from_coco_category``; COCO's for COCO's 17).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from densevit.datasets.coco import load_coco_json
from densevit.datasets.io import ImageReader, read_coco_results
from densevit.datasets.keypoint_info import KeypointInfo, from_coco_category
from densevit.ops.keypoints import box_to_center_scale, transform_points, udp_warp_matrix

__all__ = [
    "DEFAULT_INPUT_SIZE",
    "DEFAULT_PADDING",
    "CocoKeypoints",
    "TopDownAugment",
    "crop_person",
    "flip_matrix",
    "keypoint_category",
]

EMPTY_CROP_POLICIES = ("skip", "error")
DEFAULT_INPUT_SIZE = (256, 192)  # (H, W): ViTPose's COCO crops
DEFAULT_PADDING = 1.25  # box enlargement around a person


@dataclass(frozen=True)
class TopDownAugment:
    """Training augmentation of a top-down crop; defaults are mmpose 1.x's (ViTPose's COCO configs).

    Shift, scale and rotation draw from a normal truncated to [-1, 1] (mmpose's ``truncnorm``), times the factor.
    """

    flip_prob: float = 0.5
    half_body_prob: float = 0.3
    half_body_min_total: int = 9  # labelled joints needed before half-body is considered
    half_body_min_upper: int = 2
    half_body_min_lower: int = 3
    half_body_upper_prob: float = 0.7  # chance of keeping the upper body when both halves qualify
    half_body_padding: float = 1.5
    shift_prob: float = 0.3
    shift_factor: float = 0.16  # of the box size
    scale_prob: float = 1.0
    scale_range: tuple[float, float] = (0.5, 1.5)
    rotate_prob: float = 0.6
    rotate_factor: float = 80.0  # degrees


def _truncnorm(n: int) -> np.ndarray:
    """``n`` standard normal samples truncated to [-1, 1], by rejection from numpy's global generator."""
    out = np.random.randn(n)
    bad = np.abs(out) > 1
    while bad.any():
        out[bad] = np.random.randn(int(bad.sum()))
        bad = np.abs(out) > 1
    return out


def flip_matrix(width: int) -> np.ndarray:
    """The [3, 3] affine that mirrors an image of ``width`` pixels about its centre: x -> width - 1 - x."""
    return np.array([[-1.0, 0.0, width - 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])


def crop_person(image: np.ndarray, center: np.ndarray, scale: np.ndarray, rotation: float,
                input_size: tuple[int, int], flip: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The UDP crop of one person: image RGB [H0, W0, 3] -> (crop [H, W, 3] for ``input_size`` (H, W), the affine
    [2, 3] from the (mirrored, when ``flip``) original image to the crop). A flip is the mirror then the crop,
    one warp of the original image."""
    h, w = input_size
    matrix = udp_warp_matrix(center, scale, rotation, (w, h))
    warp = matrix @ flip_matrix(image.shape[1]) if flip else matrix
    return cv2.warpAffine(image, warp, (w, h), flags=cv2.INTER_LINEAR), matrix


def keypoint_category(data: dict, source: str, category_id: int | None = None) -> dict:
    """The category that carries the keypoint names: ``category_id``'s, else the only one with ``keypoints``."""
    cats = [c for c in data["categories"] if "keypoints" in c]
    if category_id is not None:
        cats = [c for c in data["categories"] if c.get("id") == category_id]
        if not cats:
            raise ValueError(f"{source}: no category with id {category_id} (found "
                             f"{[c.get('id') for c in data['categories']]})")
    elif len(cats) != 1:
        raise ValueError(f"{source}: expected exactly one category with a 'keypoints' list, found {len(cats)} "
                         f"({[c.get('name') for c in cats]}); pass category_id")
    return cats[0]


class CocoKeypoints(Dataset):
    """Top-down person (or any keypoint set) samples from a COCO keypoint file, one per box.

    Items follow the pose contract: ``{"inputs": uint8 [3, H, W] crop, "data_samples": {img_id, ann_id | det_id,
    img_path, ori_shape, img_shape, center, scale, rotation, bbox, bbox_score[, keypoints, keypoints_visible]}}``
    with ``input_size = (H, W)``. With ``train=True`` the samples carry ``keypoints`` [K, 2] in crop pixels and
    ``keypoints_visible`` [K] (1 where labelled; joints outside the crop keep 1 and the UDP target gives them weight
    0 when their Gaussian misses the heatmap, as mmpose does).

    ``bbox_file`` (evaluation): person boxes in COCO result format instead of the ground truth; only the keypoint
    category's boxes scoring ``bbox_score_thr`` or more are kept. ``num_keypoints``: the count the model was built
    for, checked against the file. ``empty_crop`` (training): an annotation whose labelled joints all fall outside
    its un-augmented crop is counted in ``skipped`` and left out (``"skip"``) or raises (``"error"``).
    ``skipped`` counts every annotation left out, by reason. ``cache_images`` keeps decoded images in memory
    (``densevit.datasets.io.ImageReader``): for small sets, where decoding is most of a data worker's time.
    """

    def __init__(
        self,
        ann_file: str | Path,
        img_dir: str | Path,
        input_size: tuple[int, int] = DEFAULT_INPUT_SIZE,
        train: bool = False,
        bbox_file: str | Path | None = None,
        bbox_score_thr: float = 0.0,
        sigmas: list[float] | None = None,
        flip_pairs: list[list[int]] | None = None,
        upper_body: list[int] | None = None,
        num_keypoints: int | None = None,
        category_id: int | None = None,
        augment: TopDownAugment | dict | None = None,
        padding: float = DEFAULT_PADDING,
        empty_crop: str = "skip",
        cache_images: bool = False,
    ) -> None:
        if train and bbox_file is not None:
            raise ValueError("CocoKeypoints: training samples come from ground-truth boxes; bbox_file is for "
                             "evaluation (train=False)")
        if empty_crop not in EMPTY_CROP_POLICIES:
            raise ValueError(f"CocoKeypoints: empty_crop must be one of {EMPTY_CROP_POLICIES}, got {empty_crop!r}")
        self.ann_file = Path(ann_file)
        self.img_dir = Path(img_dir)
        self.input_size = (int(input_size[0]), int(input_size[1]))  # (H, W)
        self.train = train
        self.padding = padding
        self.read_image = ImageReader(cache_images)
        self.augment = augment if isinstance(augment, TopDownAugment) else TopDownAugment(**(augment or {}))
        data = load_coco_json(self.ann_file)
        category = keypoint_category(data, f"annotation file {self.ann_file}", category_id)
        self.cat_id = category["id"]
        self.category_name = str(category.get("name", self.cat_id))
        self.keypoint_info: KeypointInfo = from_coco_category(
            category, sigmas=sigmas, flip_pairs=flip_pairs, upper_body=upper_body,
            source=f"annotation file {self.ann_file}")
        k = self.keypoint_info.num_keypoints
        if num_keypoints is not None and num_keypoints != k:
            raise ValueError(
                f"annotation file {self.ann_file}: category {category.get('name')!r} declares {k} keypoints "
                f"('keypoints' list), the config declares num_keypoints={num_keypoints}"
            )
        for i, im in enumerate(data["images"]):
            missing = {"id", "file_name", "width", "height"} - im.keys()
            if missing:
                raise ValueError(f"annotation file {self.ann_file}: images[{i}] lacks {sorted(missing)}")
        self.images = {im["id"]: im for im in data["images"]}
        self.skipped: Counter[str] = Counter()
        if bbox_file is None:
            self.instances = self._ground_truth_instances(data["annotations"], empty_crop)
        else:
            self.instances = self._detection_instances(Path(bbox_file), bbox_score_thr)

    @property
    def metainfo(self) -> dict:
        """The keypoint set, saved into checkpoints so inference can draw and flip without the data."""
        info = self.keypoint_info
        return {"classes": [self.category_name], "cat_ids": [self.cat_id], "keypoint_names": list(info.names),
                "flip_pairs": [list(p) for p in info.flip_pairs], "skeleton": [list(s) for s in info.skeleton],
                "sigmas": list(info.sigmas), "upper_body": list(info.upper_body)}

    # --- building the instance list -------------------------------------------------------------------------

    def _ground_truth_instances(self, annotations: list[dict], empty_crop: str) -> list[dict[str, Any]]:
        k = self.keypoint_info.num_keypoints
        instances = []
        for ann in annotations:
            if ann["category_id"] != self.cat_id:
                continue
            img = self.images.get(ann["image_id"])
            if img is None:
                raise ValueError(f"annotation file {self.ann_file}: annotation {ann.get('id')} has image_id "
                                 f"{ann['image_id']}, which is not among its images")
            values = ann.get("keypoints")
            if values is None or len(values) != 3 * k:
                found = "no 'keypoints'" if values is None else f"{len(values)} values"
                raise ValueError(
                    f"annotation file {self.ann_file}: annotation {ann.get('id')} 'keypoints' holds {found}, "
                    f"expected {3 * k} ({k} keypoints x (x, y, v)) as the category declares"
                )
            if ann.get("iscrowd", 0):
                self.skipped["crowd"] += 1
                continue
            kpts = np.asarray(values, np.float32).reshape(k, 3)
            if kpts.max() <= 0:  # mmpose's test: no labelled joint at all
                self.skipped["no labelled keypoint"] += 1
                continue
            w0, h0 = img["width"], img["height"]
            x, y, w, h = ann["bbox"]
            x1, y1 = np.clip(x, 0, w0 - 1), np.clip(y, 0, h0 - 1)
            x2, y2 = np.clip(x + w, 0, w0 - 1), np.clip(y + h, 0, h0 - 1)
            if x2 <= x1 or y2 <= y1:
                self.skipped["empty box"] += 1
                continue
            inst = {"img_id": ann["image_id"], "ann_id": ann["id"], "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "bbox_score": 1.0, "keypoints": kpts[:, :2], "visible": np.minimum(1.0, kpts[:, 2])}
            if self.train and not self._any_joint_in_crop(inst):
                if empty_crop == "error":
                    raise ValueError(
                        f"annotation file {self.ann_file}: annotation {ann['id']} (image {ann['image_id']}) has no "
                        f"labelled keypoint inside its box's crop; fix it or pass empty_crop='skip'"
                    )
                self.skipped["no labelled keypoint in the crop"] += 1
                continue
            instances.append(inst)
        return instances

    def _any_joint_in_crop(self, inst: dict) -> bool:
        center, scale = self._center_scale(inst["bbox"])
        h, w = self.input_size
        pts = transform_points(inst["keypoints"][inst["visible"] > 0], udp_warp_matrix(center, scale, 0.0, (w, h)))
        return bool(((pts >= 0) & (pts <= [w - 1, h - 1])).all(-1).any())

    def _detection_instances(self, bbox_file: Path, score_thr: float) -> list[dict[str, Any]]:
        dets = read_coco_results(bbox_file, ("image_id", "category_id", "bbox", "score"))
        unknown = sorted({d["image_id"] for d in dets} - set(self.images))
        if unknown:
            raise ValueError(f"box file {bbox_file}: image ids {unknown[:10]} are not images of the annotation "
                             f"file {self.ann_file}")
        instances = []
        for det in dets:
            if det["category_id"] != self.cat_id:
                self.skipped["other category"] += 1
                continue
            if det["score"] < score_thr:
                self.skipped["score below bbox_score_thr"] += 1
                continue
            instances.append({"img_id": det["image_id"], "det_id": len(instances),
                              "bbox": [float(v) for v in det["bbox"][:4]], "bbox_score": float(det["score"])})
        return instances

    # --- one sample ------------------------------------------------------------------------------------------

    def _center_scale(self, bbox: list[float]) -> tuple[np.ndarray, np.ndarray]:
        h, w = self.input_size
        return box_to_center_scale(bbox, aspect_ratio=w / h, padding=self.padding)

    def _half_body(self, kpts: np.ndarray, visible: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """Centre and scale of the upper or lower body's labelled joints, or None (mmpose's RandomHalfBody)."""
        aug, upper = self.augment, self.keypoint_info.upper_body
        if not upper or visible.sum() < aug.half_body_min_total or np.random.rand() > aug.half_body_prob:
            return None
        labelled = visible > 0
        in_upper = np.zeros(len(kpts), bool)
        in_upper[list(upper)] = True
        upper_ids, lower_ids = np.nonzero(labelled & in_upper)[0], np.nonzero(labelled & ~in_upper)[0]
        prefer_upper = np.random.rand() < aug.half_body_upper_prob
        upper_ok, lower_ok = len(upper_ids) >= aug.half_body_min_upper, len(lower_ids) >= aug.half_body_min_lower
        if not (upper_ok or lower_ok):
            return None
        ids = upper_ids if (upper_ok and (prefer_upper or not lower_ok)) else lower_ids
        pts = kpts[ids]
        # The joints' mean is the centre and their extent the size (mmpose); the aspect is fixed by the caller.
        return pts.mean(0).astype(np.float64), (pts.max(0) - pts.min(0)) * aug.half_body_padding

    def _augment(self, inst: dict, width: int) -> tuple[np.ndarray, np.ndarray, float, bool, np.ndarray, np.ndarray]:
        """Random flip, half-body, shift, scale, rotation -> (center, scale, rotation, flipped, keypoints, visible).

        As mmpose 1.x, the box keeps its own aspect (x padding) through half-body, shift and scale, and is widened
        or heightened to the crop's aspect at the end, so the shift is a fraction of the box's own size.
        """
        aug = self.augment
        kpts, visible = inst["keypoints"].astype(np.float64), inst["visible"].copy()
        x, y, bw, bh = inst["bbox"]
        center, scale = np.array([x + 0.5 * bw, y + 0.5 * bh]), np.array([bw, bh]) * self.padding
        flipped = bool(np.random.rand() < aug.flip_prob)
        if flipped:
            center = np.array([width - 1.0 - center[0], center[1]])
            kpts = np.stack([width - 1.0 - kpts[:, 0], kpts[:, 1]], -1)
            order = list(self.keypoint_info.flip_index)
            kpts, visible = kpts[order], visible[order]
        half = self._half_body(kpts, visible)
        if half is not None:
            center, scale = half
        offset = _truncnorm(2) * aug.shift_factor
        if np.random.rand() < aug.shift_prob:
            center = center + offset * scale
        lo, hi = aug.scale_range
        factor = _truncnorm(1)[0] * (hi - lo) / 2 + (hi + lo) / 2
        if np.random.rand() < aug.scale_prob:
            scale = scale * factor
        rotation = float(_truncnorm(1)[0] * aug.rotate_factor)
        if np.random.rand() >= aug.rotate_prob:
            rotation = 0.0
        h, w = self.input_size
        _, scale = box_to_center_scale([0.0, 0.0, *scale], aspect_ratio=w / h, padding=1.0)
        return center, scale, rotation, flipped, kpts, visible

    def __len__(self) -> int:
        return len(self.instances)

    def __getitem__(self, index: int) -> dict:
        inst = self.instances[index]
        info = self.images[inst["img_id"]]
        path = self.img_dir / info["file_name"]
        image = self.read_image(path)
        h0, w0 = image.shape[:2]
        h, w = self.input_size
        if self.train:
            center, scale, rotation, flipped, kpts, visible = self._augment(inst, w0)
        else:
            (center, scale), rotation, flipped = self._center_scale(inst["bbox"]), 0.0, False
        crop, matrix = crop_person(image, center, scale, rotation, (h, w), flipped)
        sample = {
            "img_id": int(inst["img_id"]),
            "img_path": str(path),
            "ori_shape": (h0, w0),
            "img_shape": (h, w),
            "center": np.asarray(center, np.float64),
            "scale": np.asarray(scale, np.float64),
            "rotation": rotation,
            "bbox": list(inst["bbox"]),
            "bbox_score": inst["bbox_score"],
        }
        if "ann_id" in inst:
            sample["ann_id"] = int(inst["ann_id"])
        else:
            sample["det_id"] = int(inst["det_id"])
        if self.train:
            sample["flipped"] = flipped
            sample["keypoints"] = torch.from_numpy(transform_points(kpts, matrix).astype(np.float32))
            sample["keypoints_visible"] = torch.from_numpy(visible.astype(np.float32))
        return {"inputs": torch.from_numpy(np.ascontiguousarray(crop.transpose(2, 0, 1))), "data_samples": sample}

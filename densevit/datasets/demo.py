"""Built-in demo data: synthetic shape scenes written in the COCO layout, so the demo uses the real loaders.

``generate_demo_dataset`` writes (``{split}`` is ``train`` / ``val``, ``{id}`` the 8-digit image id)::

    root/meta.json                                   generator settings; a matching file skips regeneration
    root/{split}/{id}.jpg                            RGB, JPEG quality 95, with mild sensor noise
    root/annotations/instances_{split}.json          COCO instances     (task "instances")
    root/annotations/keypoints_{split}.json          COCO keypoints     (task "keypoints")
    root/semantic/{split}/{id}.png                   uint8, 0 = background, k + 1 = DEMO_CLASSES[k] ("semantic")
    root/depth/{split}/{id}.png, root/depth/{split}.txt   uint16 mm, NYU-style split file ("depth")
    root/restoration/{split}/{gt,lq}/{id}.png        clean render / degraded copy ("restoration")
    root/restoration/{split}/lq_x2/{id}x2.png        the clean render halved by MATLAB bicubic ("super_resolution")
    root/pose/{split}/{id}.jpg                       articulated figures among the shapes ("pose")
    root/annotations/person_keypoints_{split}.json   their 17 COCO person keypoints, boxes, masks ("pose")

The pose task has images of its own (``densevit.datasets.demo_pose``), in COCO's person keypoint layout so the
pose quickstart reads them with the COCO loader. Run ``python -m densevit.datasets.demo OUT_DIR --tasks instances
semantic`` to write it from the shell.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from pycocotools import mask as mask_utils
from tqdm import tqdm

from densevit.datasets.demo_pose import PoseScene, render_pose_scene, sample_pose_scene
from densevit.datasets.demo_scene import (
    DEMO_CLASSES,
    DEMO_KEYPOINTS,
    Scene,
    add_sensor_noise,
    degrade,
    render_depth,
    render_image,
    render_instance_ids,
    render_keypoints,
    render_semantic,
    sample_scene,
)
from densevit.datasets.keypoint_info import COCO_KEYPOINTS
from densevit.ops.degradations import imresize

__all__ = [
    "DEMO_CATEGORY_IDS",
    "DEMO_CLASSES",
    "DEMO_TASKS",
    "demo_pose_scene",
    "demo_scene",
    "generate_demo_dataset",
    "main",
    "mask_to_segmentation",
]

# Non-contiguous like COCO's, so loaders must map category ids to contiguous labels.
DEMO_CATEGORY_IDS: tuple[int, ...] = tuple(2 * k + 1 for k in range(len(DEMO_CLASSES)))
DEMO_TASKS: tuple[str, ...] = ("instances", "keypoints", "semantic", "depth", "restoration", "super_resolution",
                               "pose")
DEMO_VERSION = 2  # bump whenever the generator's output changes, so stale copies are regenerated
_GENERATOR = "densevit.datasets.demo"
_SPLITS = ("train", "val")
_OUTPUTS = ("annotations", *_SPLITS, "semantic", "depth", "restoration", "pose")  # everything written but meta.json
_POLYGON_MIN_IOU = 0.98
_POSE_STREAM = 1  # the pose images' scenes draw from their own stream, apart from the shape images'


def demo_scene(seed: int, split: str, index: int, image_size: int) -> Scene:
    """The scene of image ``index`` of ``split``; it depends on nothing else, so split sizes never shift it."""
    if split not in _SPLITS:
        raise ValueError(f"split must be one of {_SPLITS}, got {split!r}")
    rng = np.random.default_rng([seed, _SPLITS.index(split), index])
    return sample_scene(rng, image_size, image_size)


def demo_pose_scene(seed: int, split: str, index: int, image_size: int) -> PoseScene:
    """The figures and room of pose image ``index`` of ``split``; independent of the shape image of that index."""
    if split not in _SPLITS:
        raise ValueError(f"split must be one of {_SPLITS}, got {split!r}")
    rng = np.random.default_rng([seed, _SPLITS.index(split), index, _POSE_STREAM])
    return sample_pose_scene(rng, image_size, image_size)


def mask_to_segmentation(mask: np.ndarray) -> list[list[float]] | dict[str, Any]:
    """COCO segmentation of a bool [H, W] mask: polygons where they reproduce it (IoU >= 0.98), else RLE.

    RLE is used for masks with holes (rings, or an object seen around a nearer one), which polygons cannot hold.
    """
    h, w = mask.shape
    # Contours of the 2x nearest-upsampled mask trace pixel edges instead of pixel centres, so the polygons
    # decode back to the same pixels under pycocotools' pixel-edge convention.
    big = cv2.resize(mask.astype(np.uint8), (2 * w, 2 * h), interpolation=cv2.INTER_NEAREST)
    contours, _ = cv2.findContours(big, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    polygons = [((cv2.approxPolyDP(c, 0.5, True).reshape(-1, 2) + 0.5) / 2).ravel().tolist() for c in contours]
    polygons = [p for p in polygons if len(p) >= 6]  # pycocotools needs 3 points per polygon
    if polygons:
        decoded = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(polygons, h, w))).astype(bool)
        if (decoded & mask).sum() >= _POLYGON_MIN_IOU * (decoded | mask).sum():
            return polygons
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [h, w], "counts": rle["counts"].decode("ascii")}


def _categories(with_keypoints: bool) -> list[dict[str, Any]]:
    """COCO category entries; keypoint files add each class's point names and outline skeleton (1-based)."""
    categories = []
    for cat_id, name in zip(DEMO_CATEGORY_IDS, DEMO_CLASSES, strict=True):
        entry: dict[str, Any] = {"id": cat_id, "name": name, "supercategory": "shape"}
        if with_keypoints:
            k = len(DEMO_KEYPOINTS[name])
            entry["keypoints"] = list(DEMO_KEYPOINTS[name])
            entry["skeleton"] = [[i + 1, (i + 1) % k + 1] for i in range(k)]
        categories.append(entry)
    return categories


def _annotations(scene: Scene, image_id: int) -> list[dict[str, Any]]:
    """COCO annotations (with keypoints) of the visible part of every object; ids are filled in later."""
    ids = render_instance_ids(scene)
    keypoints = render_keypoints(scene)
    return [_annotation(ids == index, keypoints[index], image_id, DEMO_CATEGORY_IDS[obj.label])
            for index, obj in enumerate(scene.objects)]


def _person_annotations(keypoints: list[np.ndarray], masks: list[np.ndarray], image_id: int) -> list[dict[str, Any]]:
    """COCO person keypoint annotations of a pose image's figures (box, area and mask of the visible part)."""
    return [_annotation(mask, points, image_id, 1) for points, mask in zip(keypoints, masks, strict=True)]


def _annotation(mask: np.ndarray, points: np.ndarray, image_id: int, category_id: int) -> dict[str, Any]:
    """One COCO annotation from an object's visible mask [H, W] bool and its keypoints [K, 3] (x, y, visibility):
    box and area of the mask, polygons, points rounded to 0.01 px."""
    rows, cols = np.nonzero(mask)
    x0, y0 = int(cols.min()), int(rows.min())
    points = points.copy()
    points[:, :2] = np.round(points[:, :2], 2)
    return {
        "image_id": image_id,
        "category_id": category_id,
        "bbox": [float(x0), float(y0), float(cols.max() - x0 + 1), float(rows.max() - y0 + 1)],
        "area": float(mask.sum()),
        "iscrowd": 0,
        "segmentation": mask_to_segmentation(mask),
        "keypoints": [float(v) if i % 3 < 2 else int(v) for i, v in enumerate(points.ravel())],
        "num_keypoints": int((points[:, 2] > 0).sum()),
    }


def _write_json(path: Path, content: dict[str, Any]) -> None:
    """Write compact JSON, creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content, separators=(",", ":")))


def _write_png(path: Path, array: np.ndarray) -> None:
    """Write a PNG (RGB arrays are given in RGB order), creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), array[..., ::-1] if array.ndim == 3 else array):
        raise OSError(f"could not write {path}")


def _write_split(root: Path, split: str, count: int, image_size: int, seed: int, tasks: Sequence[str],
                 bar: tqdm) -> None:
    """Render and write one split's images and targets."""
    images, annotations, depth_lines, pose_annotations = [], [], [], []
    shape_tasks = [t for t in tasks if t != "pose"]
    if shape_tasks:
        (root / split).mkdir(parents=True, exist_ok=True)
    if "pose" in tasks:
        (root / "pose" / split).mkdir(parents=True, exist_ok=True)
    for index in range(count):
        image_id = index + 1
        stem = f"{image_id:08d}"
        if "pose" in tasks:
            pose_image, keypoints, masks = render_pose_scene(demo_pose_scene(seed, split, index, image_size))
            path = root / "pose" / split / f"{stem}.jpg"
            if not cv2.imwrite(str(path), pose_image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95]):
                raise OSError(f"could not write {path}")
            pose_annotations += _person_annotations(keypoints, masks, image_id)
        if not shape_tasks:
            bar.update()
            continue
        scene = demo_scene(seed, split, index, image_size)
        clean = render_image(scene)
        path = root / split / f"{stem}.jpg"
        if not cv2.imwrite(str(path), add_sensor_noise(scene, clean)[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95]):
            raise OSError(f"could not write {path}")
        images.append({"id": image_id, "file_name": path.name, "height": image_size, "width": image_size})
        if "instances" in tasks or "keypoints" in tasks:
            annotations += _annotations(scene, image_id)
        if "semantic" in tasks:
            _write_png(root / "semantic" / split / f"{stem}.png", render_semantic(scene))
        if "depth" in tasks:
            millimetres = np.clip(np.round(render_depth(scene) * 1000.0), 0, 65535).astype(np.uint16)
            _write_png(root / "depth" / split / f"{stem}.png", millimetres)
            depth_lines.append(f"{split}/{stem}.jpg depth/{split}/{stem}.png {scene.focal:.4f}\n")
        if "restoration" in tasks or "super_resolution" in tasks:
            _write_png(root / "restoration" / split / "gt" / f"{stem}.png", clean)
        if "restoration" in tasks:
            _write_png(root / "restoration" / split / "lq" / f"{stem}.png", degrade(scene, clean))
        if "super_resolution" in tasks:  # the SR benchmarks' LR: MATLAB imresize, uint8
            _write_png(root / "restoration" / split / "lq_x2" / f"{stem}x2.png", imresize(clean, 0.5))
        bar.update()

    for ann_id, ann in enumerate(annotations, start=1):
        ann["id"] = ann_id
    for ann_id, ann in enumerate(pose_annotations, start=1):
        ann["id"] = ann_id
    info = {"description": "densevit synthetic shapes demo", "version": str(DEMO_VERSION)}
    if "instances" in tasks:
        plain = [{k: v for k, v in a.items() if k not in ("keypoints", "num_keypoints")} for a in annotations]
        _write_json(root / "annotations" / f"instances_{split}.json",
                    {"info": info, "licenses": [], "images": images, "annotations": plain,
                     "categories": _categories(with_keypoints=False)})
    if "keypoints" in tasks:
        _write_json(root / "annotations" / f"keypoints_{split}.json",
                    {"info": info, "licenses": [], "images": images, "annotations": annotations,
                     "categories": _categories(with_keypoints=True)})
    if "depth" in tasks:
        (root / "depth").mkdir(parents=True, exist_ok=True)  # no image of an empty split made it
        (root / "depth" / f"{split}.txt").write_text("".join(depth_lines))
    if "pose" in tasks:
        person = {"id": 1, "name": "person", "supercategory": "person", "keypoints": list(COCO_KEYPOINTS.names),
                  "skeleton": [[a + 1, b + 1] for a, b in COCO_KEYPOINTS.skeleton]}
        _write_json(root / "annotations" / f"person_keypoints_{split}.json",
                    {"info": {**info, "description": "densevit synthetic people demo"}, "licenses": [],
                     "images": [{"id": i, "file_name": f"{i:08d}.jpg", "height": image_size, "width": image_size}
                                for i in range(1, count + 1)],
                     "annotations": pose_annotations,
                     "categories": [person]})


def generate_demo_dataset(root: str | Path, num_train: int = 1000, num_val: int = 200, image_size: int = 256,
                          seed: int = 0, tasks: Sequence[str] = ("instances",), progress: bool = True) -> Path:
    """Write the demo dataset under ``root`` and return ``root``; a complete copy with the same settings is kept.

    A copy with the same scenes and more targets than ``tasks`` asks for is kept too.

    The same arguments always give byte-identical files. A different demo dataset already in ``root`` is
    removed first; a non-empty ``root`` that is not a demo dataset is never touched.
    """
    unknown = sorted(set(tasks) - set(DEMO_TASKS))
    if unknown:
        raise ValueError(f"unknown demo task(s) {unknown}; known tasks are {list(DEMO_TASKS)}")
    if num_train < 0 or num_val < 0 or seed < 0 or image_size < 32:
        raise ValueError(f"need num_train, num_val, seed >= 0 and image_size >= 32, got num_train={num_train}, "
                         f"num_val={num_val}, seed={seed}, image_size={image_size}")
    root = Path(root)
    meta_path = root / "meta.json"
    meta = {"generator": _GENERATOR, "version": DEMO_VERSION, "seed": seed, "image_size": image_size,
            "num_train": num_train, "num_val": num_val, "tasks": [t for t in DEMO_TASKS if t in tasks],
            "classes": list(DEMO_CLASSES), "category_ids": list(DEMO_CATEGORY_IDS)}
    if meta_path.is_file():
        try:
            old = json.loads(meta_path.read_text())
        except json.JSONDecodeError:
            old = None
        if not isinstance(old, dict) or old.get("generator") != _GENERATOR:
            raise FileExistsError(f"{meta_path} is not a densevit demo meta.json (expected generator "
                                  f"{_GENERATOR!r}); refusing to overwrite {root}")
        same_scenes = {k: v for k, v in old.items() if k != "tasks"} == {
            **{k: v for k, v in meta.items() if k != "tasks"}, "complete": True}
        if same_scenes and set(meta["tasks"]) <= set(old.get("tasks", ())):
            return root  # a copy with these scenes and (at least) these targets is already complete
        for name in _OUTPUTS:
            shutil.rmtree(root / name, ignore_errors=True)
    elif root.is_dir() and any(root.iterdir()):
        raise FileExistsError(f"{root} is not empty and has no demo meta.json; pass a new or empty directory")
    root.mkdir(parents=True, exist_ok=True)
    # Written first as incomplete, so an interrupted run is recognised as ours and redone next time.
    meta_path.write_text(json.dumps({**meta, "complete": False}, indent=2))
    with tqdm(total=num_train + num_val, desc=f"demo data -> {root}", disable=not progress) as bar:
        for split, count in zip(_SPLITS, (num_train, num_val), strict=True):
            _write_split(root, split, count, image_size, seed, meta["tasks"], bar)
    meta_path.write_text(json.dumps({**meta, "complete": True}, indent=2))
    return root


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: ``python -m densevit.datasets.demo OUT_DIR [--num-train N ...]``."""
    parser = argparse.ArgumentParser(description="Write the densevit synthetic shapes demo dataset (COCO layout).")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--num-train", type=int, default=1000)
    parser.add_argument("--num-val", type=int, default=200)
    parser.add_argument("--size", type=int, default=256, help="image side in pixels")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tasks", nargs="+", choices=DEMO_TASKS, default=["instances"])
    args = parser.parse_args(argv)
    start = time.perf_counter()
    root = generate_demo_dataset(args.out_dir, num_train=args.num_train, num_val=args.num_val,
                                 image_size=args.size, seed=args.seed, tasks=args.tasks)
    print(f"demo dataset ready in {root} ({time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()

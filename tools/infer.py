"""Run a model on an image or a folder: python tools/infer.py CONFIG CHECKPOINT INPUT --out-dir DIR.

Writes pictures per image and all predictions in one predictions.json, by task:
detection ``<stem>.png`` (boxes, masks, names, scores) and COCO result records;
segmentation ``<stem>_overlay.png`` (with a legend) and ``<stem>_labels.png`` (class indices), a record per image;
depth ``<stem>_depth.png`` (with a colour bar) and ``<stem>_depth16.png`` (uint16 millimetres), a record per image;
restoration ``<stem>_restored.png`` (full resolution) and ``<stem>_compare.png`` (input | restored, zoomed crops),
a record per image; ``--tile 512`` restores overlapping tiles (memory stays flat on photos of any size).
pose ``<stem>.png`` (skeletons: joints and limbs coloured by side, scores) and one COCO keypoint result per person.

A top-down pose model needs person boxes: from a densevit detector (``--det-config`` / ``--det-checkpoint``, its
``--det-class`` detections), from a COCO-format box file (``--bbox-file``: image ids from ``--ann-file``'s
images, else the file stems' numbers, as COCO names its images), or, without either, the whole image as one person.
"""

from __future__ import annotations

import argparse
import json
import os
from collections import Counter
from pathlib import Path

import numpy as np
from mmengine.config import DictAction
from tqdm import tqdm

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config")
    parser.add_argument("checkpoint")
    parser.add_argument("input", help="an image file or a folder of images")
    parser.add_argument("--out-dir", required=True, help="where pictures and predictions.json go")
    parser.add_argument("--score-thr", type=float, default=0.3, help="lowest detection score drawn (all are saved)")
    parser.add_argument("--cfg-options", nargs="+", action=DictAction, help="override config keys: key=value")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--tile", type=int, help="restoration: tile side in input pixels (default: whole images)")
    parser.add_argument("--tile-overlap", type=int, default=32, help="restoration: overlap of neighbouring tiles")
    people = parser.add_argument_group("person boxes for a top-down pose model (default: the whole image)")
    people.add_argument("--det-config", help="a densevit detector's config")
    people.add_argument("--det-checkpoint", help="its checkpoint")
    people.add_argument("--det-class", default="person", help="the detector class taken as people")
    people.add_argument("--det-score-thr", type=float, default=0.3, help="lowest box score kept (detector or file)")
    people.add_argument("--bbox-file", help="person boxes in COCO result format (image_id, bbox, score)")
    people.add_argument("--ann-file", help="COCO annotation file whose images give --bbox-file's image ids")
    args = parser.parse_args()
    if (args.det_config is None) != (args.det_checkpoint is None):
        parser.error("--det-config and --det-checkpoint go together")
    if args.det_config and args.bbox_file:
        parser.error("give person boxes from a detector or from --bbox-file, not both")
    return args


def load_box_file(path: Path, score_thr: float) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """COCO-format boxes per image id: (boxes [N, 4] xywh, scores [N]) of the entries scoring at least score_thr."""
    try:
        entries = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise SystemExit(f"--bbox-file {path}: cannot read it ({err})") from err
    if not isinstance(entries, list) or any(not {"image_id", "bbox", "score"} <= set(e) for e in entries):
        raise SystemExit(f"--bbox-file {path}: expected a COCO result list of {{image_id, bbox, score}} entries")
    per_image: dict[int, list[dict]] = {}
    for entry in entries:
        if entry["score"] >= score_thr:
            per_image.setdefault(int(entry["image_id"]), []).append(entry)
    return {img_id: (np.array([e["bbox"][:4] for e in kept], np.float64), np.array([e["score"] for e in kept]))
            for img_id, kept in per_image.items()}


def image_ids(paths: list[Path], ann_file: str | None, bbox_file: str | None) -> list[int]:
    """Each image's id: from the annotation file's images (by file name), else its stem's number, else its index."""
    if ann_file:
        images = json.loads(Path(ann_file).read_text()).get("images", [])
        by_name = {im["file_name"]: im["id"] for im in images}
        missing = [p.name for p in paths if p.name not in by_name]
        if missing:
            raise SystemExit(f"--ann-file {ann_file}: no images named {missing[:5]}")
        return [by_name[p.name] for p in paths]
    if bbox_file:
        odd = [p.name for p in paths if not p.stem.isdigit()]
        if odd:
            raise SystemExit(f"--bbox-file {bbox_file} refers to images by id: name the images by their ids "
                             f"(COCO's 000000000785.jpg) or give --ann-file; found {odd[:5]}")
        return [int(p.stem) for p in paths]
    return list(range(len(paths)))


def list_images(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise SystemExit(f"input {path} is neither an image file nor a folder")
    return sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def output_stems(paths: list[Path]) -> dict[Path, str]:
    """The name each image's pictures start with: its stem, or stem_suffix when another image shares the stem
    (x.jpg and x.png would otherwise overwrite each other's pictures)."""
    counts = Counter(p.stem for p in paths)
    return {p: p.stem if counts[p.stem] == 1 else f"{p.stem}_{p.suffix[1:].lower()}" for p in paths}


def write_atomic(path: Path, data: bytes) -> None:
    """Write through a temporary file, so an interrupted run never leaves a truncated file under ``path``."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def main() -> None:
    args = parse_args()
    # imported after parsing, so that --help answers at once (torch alone takes seconds to import)
    from densevit.apis import detect_people, inference, init_model, pose_inference, task_of
    from densevit.config import load_config
    from densevit.datasets.io import read_image
    from densevit.models.pose import TopDownPose
    from densevit.vis.canvas import png_bytes

    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = init_model(load_config(args.config, args.cfg_options), args.checkpoint, args.device)
    task = task_of(model)
    if args.tile is not None:
        if not hasattr(model.model, "tile"):
            raise SystemExit(f"--tile applies to restoration models, not to {type(model.model).__name__}")
        if args.tile <= args.tile_overlap:
            raise SystemExit(f"--tile {args.tile} must be larger than --tile-overlap {args.tile_overlap}")
        model.model.tile, model.model.tile_overlap = args.tile, args.tile_overlap
    is_pose = isinstance(model.model, TopDownPose)
    if (args.det_config or args.bbox_file) and not is_pose:
        raise SystemExit(f"person boxes are for a top-down pose model; {args.config} builds "
                         f"{type(model.model).__name__}")
    detector = init_model(args.det_config, args.det_checkpoint, args.device) if args.det_config else None
    boxes = load_box_file(Path(args.bbox_file), args.det_score_thr) if args.bbox_file else None
    paths = list_images(Path(args.input))
    stems = output_stems(paths)
    records, skipped, done = [], [], 0
    for image_id, path in zip(image_ids(paths, args.ann_file, args.bbox_file), tqdm(paths, desc="inference",
                                                                                     unit="img"), strict=True):
        try:
            image = read_image(path)
        except OSError as err:
            tqdm.write(f"skipped {path}: {err}")
            skipped.append(str(path))
            continue
        if detector is not None:
            pred = pose_inference(model, image, *detect_people(detector, image, args.det_class, args.det_score_thr))
        elif boxes is not None:
            pred = pose_inference(model, image, *boxes.get(image_id, (np.zeros((0, 4)), np.zeros(0))))
        else:
            pred = inference(model, [image])[0]
        for suffix, picture in task.pictures(model, image, pred, args.score_thr).items():
            data = picture if isinstance(picture, bytes) else png_bytes(picture)  # bytes: an encoded PNG already
            write_atomic(out_dir / f"{stems[path]}{suffix}.png", data)
        records += task.records(model, pred, image_id, path.name)
        done += 1
    write_atomic(out_dir / "predictions.json", json.dumps(records).encode())
    scored = [r["score"] for r in records if "score" in r]
    drawn = f"; {sum(s >= args.score_thr for s in scored)} of them score {args.score_thr} or more and are drawn " \
            "(--score-thr)" if scored else ""
    print(f"{len(records)} predictions for {done} images written to {out_dir / 'predictions.json'}{drawn}"
          + (f"; skipped {len(skipped)} unreadable: {', '.join(skipped)}" if skipped else ""))


if __name__ == "__main__":
    main()

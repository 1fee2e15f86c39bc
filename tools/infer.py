"""Run a model on an image or a folder: python tools/infer.py CONFIG CHECKPOINT INPUT --out-dir DIR.

Writes pictures per image and all predictions in one predictions.json, by task:
detection ``<stem>.png`` (boxes, masks, names, scores) and COCO result records;
segmentation ``<stem>_overlay.png`` (with a legend) and ``<stem>_labels.png`` (class indices), a record per image;
depth ``<stem>_depth.png`` (with a colour bar) and ``<stem>_depth16.png`` (uint16 millimetres), a record per image;
restoration ``<stem>_restored.png`` (full resolution) and ``<stem>_compare.png`` (input | restored, zoomed crops),
a record per image; ``--tile 512`` restores overlapping tiles (memory stays flat on photos of any size).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import cv2
import numpy as np
from mmengine.config import DictAction
from tqdm import tqdm

from densevit.apis import inference, init_model, task_of
from densevit.config import load_config
from densevit.datasets.io import read_image

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
    return parser.parse_args()


def list_images(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise SystemExit(f"input {path} is neither an image file nor a folder")
    return sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def write_atomic(path: Path, data: bytes) -> None:
    """Write through a temporary file, so an interrupted run never leaves a truncated file under ``path``."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def png_bytes(picture: np.ndarray) -> bytes:
    """RGB [H, W, 3] or single-channel uint8/uint16 [H, W] -> PNG file contents."""
    if picture.ndim == 3:
        picture = cv2.cvtColor(picture, cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(".png", picture)
    if not ok:
        raise OSError(f"could not encode a {picture.dtype} {list(picture.shape)} array as PNG")
    return encoded.tobytes()


def main() -> None:
    args = parse_args()
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
    records, skipped, done = [], [], 0
    for image_id, path in enumerate(tqdm(list_images(Path(args.input)), desc="inference", unit="img")):
        try:
            image = read_image(path)
        except OSError as err:
            tqdm.write(f"skipped {path}: {err}")
            skipped.append(str(path))
            continue
        pred = inference(model, [image])[0]
        for suffix, picture in task.pictures(model, image, pred, args.score_thr).items():
            write_atomic(out_dir / f"{path.stem}{suffix}.png", png_bytes(picture))
        records += task.records(model, pred, image_id, path.name)
        done += 1
    write_atomic(out_dir / "predictions.json", json.dumps(records).encode())
    print(f"{len(records)} predictions for {done} images written to {out_dir}"
          + (f"; skipped {len(skipped)} unreadable: {', '.join(skipped)}" if skipped else ""))


if __name__ == "__main__":
    main()

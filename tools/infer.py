"""Run a model on an image or a folder: python tools/infer.py CONFIG CHECKPOINT INPUT --out-dir DIR.

Writes one picture per image (predictions drawn over it) and all predictions in one JSON file.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import cv2
from tqdm import tqdm

from densevit.apis import inference, init_model
from densevit.datasets.coco import read_image
from densevit.visualization import prediction_records, render_prediction

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("config")
    parser.add_argument("checkpoint")
    parser.add_argument("input", help="an image file or a folder of images")
    parser.add_argument("--out-dir", required=True, help="where pictures and predictions.json go")
    parser.add_argument("--score-thr", type=float, default=0.3, help="lowest score drawn (all are saved)")
    parser.add_argument("--device", default="cpu")
    return parser.parse_args()


def list_images(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise SystemExit(f"input {path} is neither an image file nor a folder")
    return sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def main() -> None:
    args = parse_args()
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = init_model(args.config, args.checkpoint, args.device)
    records, skipped, done = [], [], 0
    for image_id, path in enumerate(tqdm(list_images(Path(args.input)), desc="inference", unit="img")):
        try:
            image = read_image(path)
        except OSError as err:
            tqdm.write(f"skipped {path}: {err}")
            skipped.append(str(path))
            continue
        pred = inference(model, [image])[0]
        picture = render_prediction(image, pred, model.class_names, args.score_thr)
        cv2.imwrite(str(out_dir / f"{path.stem}.png"), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
        records += prediction_records(pred, image_id, path.name, model.cat_ids)
        done += 1
    tmp = out_dir / "predictions.json.tmp"
    tmp.write_text(json.dumps(records))
    os.replace(tmp, out_dir / "predictions.json")
    print(f"{len(records)} predictions for {done} images written to {out_dir}"
          + (f"; skipped {len(skipped)} unreadable: {', '.join(skipped)}" if skipped else ""))


if __name__ == "__main__":
    main()

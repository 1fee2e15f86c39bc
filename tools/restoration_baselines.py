"""PSNR / SSIM of classical filters (and optionally a trained model) on paired restoration images, in one run.

    python tools/restoration_baselines.py data/demo/restoration/val/gt data/demo/restoration/val/lq
    python tools/restoration_baselines.py data/demo/restoration/val/gt data/demo/restoration/val/lq_x2 \\
        --lq-name "{}x2" --scale 2 --crop-border 2 --y
    ... --config CONFIG --checkpoint CKPT [--tile 256]   (adds the model, on the same images)

Scale 1 (denoising / deblurring): the degraded input itself, OpenCV non-local means (fastNlMeansDenoisingColored,
h = hColor, template 7, search 21, on BGR as cv2 reads), Gaussian blur and bilateral filters over a small grid.
Scale > 1: MATLAB bicubic upsampling (densevit.ops.degradations.imresize) of the degraded input. Scored with
densevit's BasicSR-convention PSNR / SSIM, per image then mean; the convention is printed with the table.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

Filter = Callable[["np.ndarray"], "np.ndarray"]


def classical_filters(scale: int) -> dict[str, Filter]:
    """Name -> RGB uint8 [h, w, 3] -> RGB uint8 [scale * h, scale * w, 3]."""
    import cv2

    from densevit.ops.degradations import imresize

    if scale > 1:
        return {"bicubic (MATLAB)": lambda lq: imresize(lq, scale)}
    filters: dict[str, Filter] = {"degraded input": lambda lq: lq}
    for h in (5, 10, 15):
        filters[f"non-local means h {h}"] = lambda lq, h=h: cv2.cvtColor(cv2.fastNlMeansDenoisingColored(
            cv2.cvtColor(lq, cv2.COLOR_RGB2BGR), None, h, h, 7, 21), cv2.COLOR_BGR2RGB)
    for k in (3, 5, 7):
        filters[f"Gaussian {k}x{k}"] = lambda lq, k=k: cv2.GaussianBlur(lq, (k, k), 0)
    for sigma_color in (50, 75, 100):
        filters[f"bilateral d 9, colour {sigma_color}, space 5"] = (
            lambda lq, s=sigma_color: cv2.bilateralFilter(lq, 9, s, 5))
    return filters


def model_filter(config: str, checkpoint: str, tile: int | None, device: str) -> Filter:
    """A trained restoration model as a filter (densevit.apis)."""
    from densevit.apis import inference, init_model

    model = init_model(config, checkpoint, device)
    if tile is not None:
        model.model.tile = tile
    return lambda lq: inference(model, [lq])[0]["restored"].cpu().numpy().transpose(1, 2, 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("gt_dir")
    parser.add_argument("lq_dir")
    parser.add_argument("--lq-name", default="{}", help="degraded file stem for a ground-truth stem, e.g. '{}x2'")
    parser.add_argument("--scale", type=int, default=1)
    parser.add_argument("--crop-border", type=int, default=0)
    parser.add_argument("--y", action="store_true", help="score the Y channel (SR convention)")
    parser.add_argument("--config", help="also score this config's model (needs --checkpoint)")
    parser.add_argument("--checkpoint")
    parser.add_argument("--tile", type=int, help="tiled inference for the model")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", help="write the figures to this JSON file")
    args = parser.parse_args()
    if (args.config is None) != (args.checkpoint is None):
        parser.error("--config and --checkpoint go together")
    # imported after parsing, so that --help answers at once
    import numpy as np
    from tqdm import tqdm

    from densevit.datasets.io import read_image
    from densevit.datasets.restoration import match_pairs
    from densevit.evaluation.restoration import describe_convention, psnr, ssim

    filters = classical_filters(args.scale)
    if args.config:
        filters["model " + Path(args.config).stem] = model_filter(args.config, args.checkpoint, args.tile, args.device)
    pairs = match_pairs(args.gt_dir, args.lq_dir, lq_name=args.lq_name)
    scores: dict[str, list[tuple[float, float]]] = {name: [] for name in filters}
    kwargs = {"crop_border": args.crop_border, "test_y_channel": args.y}
    for gt_path, lq_path in tqdm(pairs, desc="images", unit="img"):
        gt, lq = read_image(gt_path), read_image(lq_path)
        gt = gt[: lq.shape[0] * args.scale, : lq.shape[1] * args.scale]  # whole LR pixels, as the dataset does
        for name, fn in filters.items():
            out = fn(lq)
            scores[name].append((psnr(out, gt, **kwargs), ssim(out, gt, **kwargs)))
    convention = describe_convention(args.crop_border, args.y, ssim_3d=False)
    print(f"{len(pairs)} images of {args.lq_dir}; {convention}")
    width = max(len(n) for n in filters)
    results = {}
    for name, values in scores.items():
        p, s = np.mean(values, axis=0)
        results[name] = {"psnr": round(float(p), 4), "ssim": round(float(s), 4)}
        print(f"  {name:<{width}}  PSNR {p:7.3f} dB  SSIM {s:.4f}")
    if args.out:
        Path(args.out).write_text(json.dumps({"convention": convention, "images": len(pairs), "results": results},
                                             indent=2))


if __name__ == "__main__":
    main()

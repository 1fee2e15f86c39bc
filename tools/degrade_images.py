"""Write degraded copies of photos, to try a restoration model on them: blur, MATLAB bicubic downscaling, noise.

    python tools/degrade_images.py ../shared/data/coco_person_mini/images work_dirs/degraded --blur 1.0 --noise 15
    python tools/infer.py configs/quickstart/restoration_hybrid_vit_tiny_demo.py CKPT work_dirs/degraded \\
        --out-dir work_dirs/restored --tile 256

Applied in that order (the datasets' degradation classes), each image with ``np.random.RandomState(seed)``; the
result is rounded and clipped to 8 bits, as a PNG holds it. Files keep their stem and become PNGs.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", help="an image or a folder of images")
    parser.add_argument("out_dir")
    parser.add_argument("--blur", type=float, help="Gaussian blur sigma in pixels")
    parser.add_argument("--downscale", type=int, help="MATLAB bicubic downscaling by this factor")
    parser.add_argument("--noise", type=float, help="Gaussian noise sigma in 0-255 units")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    # imported after parsing, so that --help answers at once
    import cv2
    import numpy as np
    from tqdm import tqdm

    from densevit.datasets.io import read_image
    from densevit.datasets.restoration import IMAGE_SUFFIXES, BicubicDownsample, GaussianBlur, GaussianNoise

    steps = ([GaussianBlur(args.blur)] if args.blur else []) + \
        ([BicubicDownsample(args.downscale)] if args.downscale else []) + \
        ([GaussianNoise(args.noise)] if args.noise else [])
    if not steps:
        parser.error("give at least one of --blur, --downscale, --noise")
    source = Path(args.input)
    paths = [source] if source.is_file() else sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise SystemExit(f"no images in {source}")
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for path in tqdm(paths, desc="degrading", unit="img"):
        image = read_image(path).astype(np.float32) / 255.0
        rng = np.random.RandomState(args.seed)
        for step in steps:
            image = step(image, rng)
        out = np.clip(np.floor(image * 255.0 + 0.5), 0, 255).astype(np.uint8)
        target = out_dir / f"{path.stem}.png"
        if not cv2.imwrite(str(target), cv2.cvtColor(out, cv2.COLOR_RGB2BGR)):
            raise OSError(f"could not write {target}")
    print(f"{len(paths)} degraded images written to {out_dir}")


if __name__ == "__main__":
    main()

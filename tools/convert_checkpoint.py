"""Convert public ViT / ViTDet weights to a densevit checkpoint ``{"state_dict": ...}``.

    python tools/convert_checkpoint.py SRC DST --format {timm,mae,dinov2,detectron2} [--patch-size 16]

timm / mae / dinov2 give ``ViT`` keys (load with ``ViT(pretrained=DST)``); detectron2 gives
``SimpleFeaturePyramid`` keys plus detectron2's head keys (see ``densevit.checkpoint``). Reading is safe
(weights-only loading, numpy-only unpickling).
"""

from __future__ import annotations

import argparse
import os
from functools import partial
from pathlib import Path

import torch

from densevit.checkpoint import CONVERTERS, load_state_dict_file


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("src", type=Path, help="checkpoint to convert (.pth/.pt/.bin/.safetensors/.pkl)")
    parser.add_argument("dst", type=Path, help="output .pth file")
    parser.add_argument("--format", required=True, choices=sorted(CONVERTERS), help="layout of SRC")
    parser.add_argument("--patch-size", type=int, default=16, help="target ViT patch (dinov2 only)")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    convert = CONVERTERS[args.format]
    if args.format == "dinov2":
        convert = partial(convert, patch_size=args.patch_size)
    state = {k: v.contiguous() for k, v in convert(load_state_dict_file(args.src)).items()}

    # Write next to DST and rename, so an interrupted run never leaves a truncated checkpoint behind.
    args.dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.dst.with_name(args.dst.name + ".tmp")
    torch.save({"state_dict": state}, tmp)
    os.replace(tmp, args.dst)
    values = sum(v.numel() for v in state.values()) / 1e6
    print(f"wrote {len(state)} tensors ({values:.2f}M values) to {args.dst}")


if __name__ == "__main__":
    main()

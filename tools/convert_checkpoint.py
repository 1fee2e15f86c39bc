"""Convert public weights to densevit key names once, into a checkpoint ``{"state_dict": ...}``.

    python tools/convert_checkpoint.py SRC DST --format {timm,mae,dinov2,detectron2,vit_comer,swin,...}

The formats are the converters of ``densevit.checkpoint.CONVERTERS`` (``--help`` lists them), the same that
``load_weights`` and a config's ``pretrained`` use. Load DST with ``pretrained=dict(path=DST, converter="densevit")``
or with the module's default converter (converting converted names changes nothing). Without a model to fit, a
patch kernel keeps its size, except with ``dinov2`` (resized to 16). Reading is safe (weights-only loading,
numpy-only unpickling).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch

from densevit.checkpoint import CONVERTERS, get_converter, load_state_dict_file


def parse_args() -> argparse.Namespace:
    formats = "\n".join(f"  {name:14} {c.about}" for name, c in CONVERTERS.items())
    parser = argparse.ArgumentParser(
        description=__doc__, epilog=f"formats:\n{formats}", formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("src", type=Path, help="checkpoint to convert (.pth/.pt/.bin/.safetensors/.pkl)")
    parser.add_argument("dst", type=Path, help="output .pth file")
    parser.add_argument("--format", required=True, choices=list(CONVERTERS), help="layout of SRC")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    converter = get_converter(args.format)
    state = {k: v.contiguous() for k, v in converter.convert(load_state_dict_file(args.src), {}).items()}
    if not state:
        raise SystemExit(f"{args.src}: format {args.format} kept no tensor without a model to name them; "
                         "load the file with densevit.checkpoint.load_weights instead")

    # Write next to DST and rename, so an interrupted run never leaves a truncated checkpoint behind.
    args.dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.dst.with_name(args.dst.name + ".tmp")
    torch.save({"state_dict": state}, tmp)
    os.replace(tmp, args.dst)
    values = sum(v.numel() for v in state.values()) / 1e6
    print(f"wrote {len(state)} tensors ({values:.2f}M values) to {args.dst}")


if __name__ == "__main__":
    main()

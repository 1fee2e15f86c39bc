"""Convert public weights to densevit key names once, into a checkpoint ``{"state_dict": ...}``.

    python tools/convert_checkpoint.py SRC DST --format {timm,mae,dinov2,detectron2,vit_comer,swin,...}
    python tools/convert_checkpoint.py model_final_61ccd1.pkl vitdet_b.pth --format detectron2 \
        --config configs/vitdet/mask_rcnn_vit_b_100ep.py      # a whole detector, for tools/test.py

The formats are the converters of ``densevit.checkpoint.CONVERTERS`` (``--help`` lists them), the same that
``load_weights`` and a config's ``pretrained`` use. Load DST with ``pretrained=dict(path=DST, converter="densevit")``
or with the module's default converter (converting converted names changes nothing). Without a model to fit, a
patch kernel keeps its size, except with ``dinov2`` (resized to 16). Reading is safe (weights-only loading,
numpy-only unpickling).

With ``--config`` the file is converted for that config's whole task model (built without its pretrained
weights): every tensor of the model must come from SRC and every tensor of SRC must find its place, or the tool
stops listing what does not fit; DST is then a densevit checkpoint that ``tools/test.py``, ``tools/infer.py`` and
``init_model`` load (a detectron2 ViTDet model file with its R-CNN heads, for instance).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch

from densevit.checkpoint import CONVERTERS, get_converter, load_state_dict_file, load_weights


def parse_args() -> argparse.Namespace:
    formats = "\n".join(f"  {name:14} {c.about}" for name, c in CONVERTERS.items())
    parser = argparse.ArgumentParser(
        description=__doc__, epilog=f"formats:\n{formats}", formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("src", type=Path, help="checkpoint to convert (.pth/.pt/.bin/.safetensors/.pkl)")
    parser.add_argument("dst", type=Path, help="output .pth file")
    parser.add_argument("--format", required=True, choices=list(CONVERTERS), help="layout of SRC")
    parser.add_argument("--config", help="convert for this config's whole task model, checking every key")
    return parser.parse_args()


def convert_for_config(src: Path, fmt: str, config: str) -> dict:
    """SRC loaded strictly into the config's task model (every key on both sides), as that model's state dict."""
    from densevit.config import build, load_config, to_plain, without_pretrained

    model = build(without_pretrained(to_plain(load_config(config).model)), "model")
    load_weights(model, src, fmt)  # strict: a key without its counterpart fails, named
    return {k: v.contiguous() for k, v in model.state_dict().items()}


def main() -> None:
    args = parse_args()
    if args.config:
        state = convert_for_config(args.src, args.format, args.config)
    else:
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

"""Export a task model's raw network to ONNX (or a torch.export program) and check it against PyTorch.

    python tools/export.py CONFIG CHECKPOINT [--format onnx|pt2] [--shape H W] [--dynamic] [--dynamic-size]
                           [--out FILE] [--image PATH] [--tolerance 1e-4]

The exported graph is the task model's ``forward(inputs)``: normalised images [B, 3, H, W] in, raw tensors out
(Mask R-CNN: its pyramid maps, one output per level; segmentor: the decode logits at the finest decoded level;
depth: the depth map [B, H, W] in metres; restoration: the restored image). What the task model's ``predict``
does after the network stays in PyTorch: for Mask R-CNN the RPN, the RoI box and mask heads, NMS and mask pasting;
the segmentor's upsampling and argmax, sliding windows and flips.

The ONNX file is written with torch's dynamo exporter (opset 18; the TorchScript exporter cannot export the
simple pyramid's LayerNorm2d or UperNet's pyramid pooling), ``pt2`` with ``torch.export.save``. The file is then
run on a real image, the first image of the config's test set (or ``--image``), through the test set's transforms
and the config's data_preprocessor, zero-padded (or first shrunk) to ``--shape`` when given; onnxruntime (or the
loaded program) is compared with the PyTorch model. The relative difference of an output is max |exported - torch|
/ max |torch|; the tool exits non-zero when the largest exceeds ``--tolerance``. ``--dynamic`` leaves the batch size
free (``--dynamic-size``: height and width too) and checks a second input (batch 3; 32 / 64 px larger); a model
that bakes its input size into the graph (a ViT resizing its position table) fails that check instead of leaving
a silently wrong graph. Weights are stored inside the ONNX file unless they pass 1.5 GB (then in ``FILE.data``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mmengine.config import DictAction


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config")
    parser.add_argument("checkpoint", help="weights: a training checkpoint, a published .pth or .safetensors file")
    parser.add_argument("--format", choices=("onnx", "pt2"), default="onnx")
    parser.add_argument("--shape", type=int, nargs=2, metavar=("H", "W"),
                        help="input size of the graph (default: the preprocessed test image's)")
    parser.add_argument("--dynamic", action="store_true", help="leave the batch size free")
    parser.add_argument("--dynamic-size", action="store_true",
                        help="leave height and width free too (checked: ViT backbones bake their input size in)")
    parser.add_argument("--out", type=Path, help="output file (default: the checkpoint's name, .onnx / .pt2)")
    parser.add_argument("--image", type=Path, help="image to check with (default: the first of the test set)")
    parser.add_argument("--tolerance", type=float, default=1e-4, help="largest relative difference accepted")
    parser.add_argument("--cfg-options", nargs="+", action=DictAction, help="override config keys: key=value")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    # imported after parsing, so that --help answers at once
    import torch

    from densevit.checkpoint import load_weights
    from densevit.config import build, load_config, to_plain
    from densevit.ops.resize import pad_to_size
    from densevit.tools.export import as_list, check_input, compare, export, run_exported

    with torch.no_grad():
        cfg = load_config(args.config, args.cfg_options)
        model = build(to_plain(cfg.model), "model").eval()
        load_weights(model, args.checkpoint)
        inputs = check_input(cfg, model, args.image, args.shape)
        out = args.out or Path(args.checkpoint).with_suffix(f".{args.format}")
        out.parent.mkdir(parents=True, exist_ok=True)
        free_dims = (0,) * args.dynamic + (2, 3) * args.dynamic_size
        print(f"exporting {type(model).__name__}.forward on {list(inputs.shape)} inputs (dynamic dims: "
              f"{', '.join(('batch', '', 'height', 'width')[d] for d in free_dims) or 'none'}) to {out}")
        checks = [inputs]
        if free_dims:  # the same image in a batch of 3, padded 32 / 64 px larger when the size is free too
            h, w = inputs.shape[-2:]
            other = pad_to_size(inputs, (h + 32, w + 64)) if args.dynamic_size else inputs
            checks.append(other.expand(3 if args.dynamic else 1, -1, -1, -1).contiguous())
        # PyTorch's reference outputs for every input the exported graph is checked on
        expected = [[t.detach().numpy() for t in as_list(model(x))] for x in checks]
        try:
            export(model, inputs, args.format, out, free_dims)
        except Exception as err:  # the exporters' errors are long; the first lines say what failed
            sys.exit(f"{type(model).__name__} did not export to {args.format}"
                     f"{' with free input dims' if free_dims else ''}: {type(err).__name__}: {str(err).strip()[:800]}")
        try:
            run = run_exported(args.format, out)
        except Exception as err:  # e.g. an exporter bug that leaves a graph onnxruntime refuses
            sys.exit(f"{out} was written but cannot be loaded to check it: {type(err).__name__}: {str(err)[:500]}")
        failed = False
        for x, reference in zip(checks, expected, strict=True):
            try:
                abs_diff, rel_diff = compare(reference, run(x))
            except Exception as err:  # a graph that baked in the export size fails at another one
                print(f"input {list(x.shape)}: the exported file fails: {type(err).__name__}: {str(err)[:300]}")
                failed = True
                continue
            ok = rel_diff <= args.tolerance
            failed |= not ok
            print(f"input {list(x.shape)}: max |difference| {abs_diff:.3g}, relative {rel_diff:.3g} "
                  f"({'within' if ok else 'ABOVE'} tolerance {args.tolerance:g}; {args.format} vs PyTorch)")
        if failed:
            sys.exit(f"{out}: the exported model does not match PyTorch" + (
                "; it does not support other input shapes: export without --dynamic(-size)" if free_dims else ""))
        files = [p for p in (out, out.with_name(out.name + ".data")) if p.is_file()]
        print("written " + ", ".join(f"{p} ({p.stat().st_size / 2**20:.2f} MiB)" for p in files))


if __name__ == "__main__":
    main()

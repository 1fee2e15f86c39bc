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
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.config import DictAction
from torch import Tensor, nn

from densevit.apis import TASKS, task_of
from densevit.checkpoint import load_weights
from densevit.config import build, load_config, to_plain
from densevit.datasets.io import read_image
from densevit.engine.data import DataPreprocessor, collate
from densevit.ops.resize import pad_to_size


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


def check_input(cfg, model: nn.Module, image_path: Path | None, shape: list[int] | None) -> Tensor:
    """The check image as the model sees it in testing: test transforms, data_preprocessor, then ``shape``."""
    loader = cfg.get("test_dataloader", cfg.get("val_dataloader"))
    if loader is None:
        raise SystemExit(f"{cfg.filename}: no test_dataloader or val_dataloader to take a check image from")
    dataset_cfg = to_plain(loader["dataset"])
    if image_path is None:
        item = build(dataset_cfg, "test_dataloader.dataset")[0]
    else:
        transforms = build(dataset_cfg.get("transforms"), "test_dataloader.dataset.transforms")
        image = read_image(image_path)
        if any(cls in TASKS for cls in type(model).__mro__):  # else a task without an apis entry: image as is
            image = task_of(model).to_input(transforms, image)
        item = {"inputs": torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))), "data_samples": {}}
    preprocessor = build(to_plain(cfg.get("data_preprocessor")), "data_preprocessor")
    inputs = (preprocessor or DataPreprocessor())(collate([item]), False)["inputs"]
    if shape is None:
        return inputs
    h, w = inputs.shape[-2:]
    factor = min(shape[0] / h, shape[1] / w)
    if factor < 1:  # shrink to fit, keeping the aspect ratio, as the test transforms would
        inputs = F.interpolate(inputs, size=(int(h * factor), int(w * factor)), mode="bilinear", align_corners=False)
    return pad_to_size(inputs, shape)


def as_list(outputs: Tensor | list | tuple) -> list[Tensor]:
    return list(outputs) if isinstance(outputs, list | tuple) else [outputs]


def onnx_translations() -> dict:
    """Exporter overrides: onnxscript's ``embedding_bag`` (deformable attention's weighted bag of rows) concatenates
    int32 row indices with an int64 size, a graph onnxruntime refuses once the batch is free; indices go int64."""
    from onnxscript import INT64
    from onnxscript import opset18 as op
    from onnxscript.function_libs.torch_lib.ops.core import aten_embedding_bag_padding_idx

    def embedding_bag(weight, indices, offsets, scale_grad_by_freq=False, mode=0, sparse=False,
                      per_sample_weights=None, include_last_offset=False, padding_idx=None):
        indices, offsets = op.Cast(indices, to=INT64.dtype), op.Cast(offsets, to=INT64.dtype)
        return aten_embedding_bag_padding_idx(weight, indices, offsets, scale_grad_by_freq, mode, sparse,
                                              per_sample_weights, include_last_offset, padding_idx)

    return {torch.ops.aten.embedding_bag.padding_idx: embedding_bag}


def export(model: nn.Module, inputs: Tensor, fmt: str, out: Path, free_dims: tuple[int, ...]) -> None:
    """Write ``model(inputs)`` as an ONNX graph or a torch.export program, the input dims ``free_dims`` dynamic."""
    dims = {"inputs": dict.fromkeys(free_dims, torch.export.Dim.AUTO)} if free_dims else None
    if 0 in free_dims:  # an example of batch 1 would fix the batch size (torch.export specialises sizes 0 and 1)
        inputs = inputs.expand(2, -1, -1, -1).contiguous()
    # one self-contained file unless the weights pass protobuf's 2 GB limit (then beside it, in FILE.data)
    external = sum(p.numel() * p.element_size() for p in model.state_dict().values()) > 1.5 * 2**30
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporters' deprecation and tracer chatter
        if fmt == "onnx":
            count = len(as_list(model(inputs)))
            names = ["output"] if count == 1 else [f"output_{i}" for i in range(count)]
            torch.onnx.export(model, (inputs,), str(out), dynamo=True, opset_version=18, input_names=["inputs"],
                              output_names=names, dynamic_shapes=dims, external_data=external, verbose=False,
                              custom_translation_table=onnx_translations())
        else:
            program = torch.export.export(model, (inputs,), dynamic_shapes=dims)
            torch.export.save(program, str(out))


def run_exported(fmt: str, out: Path) -> Callable[[Tensor], list[np.ndarray]]:
    """A function from an input tensor to the exported file's outputs (numpy arrays)."""
    if fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return lambda x: session.run(None, {name: x.numpy()})
    program = torch.export.load(str(out)).module()
    return lambda x: [t.detach().numpy() for t in as_list(program(x))]


def compare(expected: list[np.ndarray], got: list[np.ndarray]) -> tuple[float, float]:
    """(max absolute, max relative) difference over the outputs; relative to each output's largest magnitude."""
    if len(got) != len(expected):
        raise SystemExit(f"the exported file returns {len(got)} outputs, the model {len(expected)}")
    worst_abs, worst_rel = 0.0, 0.0
    for i, (e, g) in enumerate(zip(expected, got, strict=True)):
        if e.shape != g.shape:
            raise SystemExit(f"output {i}: the exported file gives shape {list(g.shape)}, the model {list(e.shape)}")
        diff = float(np.abs(e - g).max())
        worst_abs = max(worst_abs, diff)
        worst_rel = max(worst_rel, diff / max(float(np.abs(e).max()), 1e-12))
    return worst_abs, worst_rel


@torch.no_grad()
def main() -> None:
    args = parse_args()
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

"""What tools/export.py does with a model: the check input as the test set gives it, the export itself (ONNX through
torch's dynamo exporter, or a torch.export program), running the written file and comparing its outputs. Kept out
of the script so that its ``--help`` answers before torch is imported."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from densevit.apis import TASKS, task_of
from densevit.config import build, to_plain
from densevit.datasets.io import read_image
from densevit.engine.data import DataPreprocessor, collate
from densevit.ops.resize import pad_to_size


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

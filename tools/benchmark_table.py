"""Every speed figure the docs quote, measured in one run: pairs timed side by side, and each task model.

    python tools/benchmark_table.py --threads 2                 # the workloads of docs/benchmarks.md
    python tools/benchmark_table.py --threads 2 --skip-paper    # without the paper-sized task models (slow)
    python tools/benchmark_table.py --threads 2 --quick         # tiny workloads (a smoke test, seconds)

First table: densevit's deformable attention against the per-level ``grid_sample`` formula
(``benchmark_msda.py``), densevit's RoIAlign against torchvision's (``benchmark_roi_align.py``), and STViT-R
against the same backbone without it (``benchmark_stvit.py``), each with the functions of its own tool. Each row
prints both medians, their ratio (densevit / reference, below 1 is faster) and the FLOPs ratio where it is counted.

Second table: each task model, built from its config without pretrained weights (the quickstart's, and a paper
recipe's at its paper-sized training crop), on one random image, with ``tools/benchmark.py``'s functions:
inference (``predict``, post-processing and test-time flips included, detection score threshold 0) and one
training step (``loss``, backward, the config's optimiser step): median milliseconds, FLOPs (a multiply-add
counts 2; the optimiser's update is not counted) and the share of the machine's peak, i.e. the FLOP/s achieved
over those of a large float32 matrix multiply measured first in the same run; last, training / inference time.
"""

from __future__ import annotations

import argparse
import os
import runpy
import statistics
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from types import SimpleNamespace

TOOLS = Path(__file__).resolve().parent
CONFIGS = TOOLS.parent / "configs"

# (task model, config, input H x W, paper-sized); the paper-sized input is the recipe's training crop
TASK_MODELS = [
    ("Mask R-CNN, quickstart", "quickstart/mask_rcnn_vit_tiny_demo.py", (256, 256), False),
    ("Mask R-CNN ViTDet-B", "vitdet/mask_rcnn_vit_b_100ep.py", (1024, 1024), True),  # ViTDet's LSJ crops
    ("UperNet, quickstart", "quickstart/upernet_vit_tiny_demo.py", (128, 128), False),
    ("UperNet ViT-B", "upernet/upernet_vit_b_sfp_ade20k_160k.py", (512, 512), True),  # ADE20K crops
    ("DPT, quickstart", "quickstart/dpt_vit_tiny_demo.py", (128, 128), False),
    ("DPT ViT-B, NYU", "depth/dpt_vit_b_nyu.py", (416, 544), True),  # the recipe's NYU crops
    ("ViTPose top-down, quickstart", "quickstart/topdown_pose_hybrid_vit_tiny_demo.py", (128, 96), False),
    ("ViTPose-B", "vitpose/vitpose_b_classic_coco_256x192.py", (256, 192), True),  # person crops
    ("restoration, quickstart", "quickstart/restoration_hybrid_vit_tiny_demo.py", (64, 64), False),
    ("restoration ViT-B, denoising", "restoration/denoise_vit_b_sfp_blind.py", (128, 128), True),  # Restormer's
]


def _tool(name: str) -> dict:
    """The functions of another benchmark tool (its ``main`` is not run)."""
    return runpy.run_path(str(TOOLS / name))


def msda_rows(quick: bool, repeats: int) -> Iterator[tuple[str, float, float, str]]:
    """Deformable attention, forward and forward + backward (ViT-CoMer-S shapes at 512x512 unless ``quick``)."""
    import torch

    from densevit.benchmarking import median_ms
    from densevit.ops.ms_deform_attn import ms_deform_attn, ms_deform_attn_grid_sample

    tool = _tool("benchmark_msda.py")
    args = SimpleNamespace(image_size=64 if quick else 512, batch=1, heads=2 if quick else 6,
                           channels=16 if quick else 384, points=4, device="cpu")
    value, shapes, loc, weights = tool["make_inputs"](args)
    ops = (ms_deform_attn_grid_sample, ms_deform_attn)

    def forward(op: Callable) -> object:
        with torch.no_grad():
            return op(value, shapes, loc, weights)

    def forward_backward(op: Callable) -> object:
        inputs = [t.detach().requires_grad_() for t in (value, loc, weights)]
        out = op(inputs[0], shapes, inputs[1], inputs[2])
        return torch.autograd.grad(out, inputs, torch.ones_like(out))

    for what, fn in (("forward", forward), ("forward + backward", forward_backward)):
        ref, ours = (median_ms(partial(fn, op), repeats, torch.device("cpu")) for op in ops)
        yield f"deformable attention vs grid_sample, {what}", ref, ours, ""


def roi_align_rows(quick: bool, repeats: int) -> Iterator[tuple[str, float, float, str]]:
    """RoIAlign 7x7 and 14x14, forward + backward (the demo detector's workload unless ``quick``)."""
    import torch

    from densevit.benchmarking import median_ms
    from densevit.ops.roi_align import multilevel_roi_align, multilevel_roi_align_torchvision

    tool = _tool("benchmark_roi_align.py")
    args = SimpleNamespace(image_size=64 if quick else 256, batch=2 if quick else 8, channels=8 if quick else 128,
                           rois=4 if quick else 64, device="cpu")
    maps, rois, level = tool["make_inputs"](args)
    scales = [1.0 / s for s in tool["STRIDES"]]
    ops = (multilevel_roi_align_torchvision, multilevel_roi_align)
    for size in (7, 14):
        rest = (rois, level, size, scales, 2)
        ref, ours = (median_ms(partial(tool["forward_backward"], op, maps, *rest), repeats, torch.device("cpu"))
                     for op in ops)
        yield f"RoIAlign {size}x{size} vs torchvision, forward + backward", ref, ours, ""


def stvit_rows(quick: bool, repeats: int) -> Iterator[tuple[str, float, float, str]]:
    """STViT-R against the plain backbone: Swin-S at 800x1216 and ViTDet-B at 1024 (tiny models if ``quick``)."""
    measure_pair = _tool("benchmark_stvit.py")["measure_pair"]
    workloads = [("swin-s", (800, 1216), {}), ("vit-b", (1024, 1024), {})]
    if quick:
        workloads = [("swin-s", (64, 96), dict(embed_dim=16, depths=(1, 1, 6, 1), num_heads=(1, 2, 4, 8))),
                     ("vit-b", (64, 96), dict(embed_dim=32, num_heads=2, img_size=64))]
    for name, size, overrides in workloads:
        result = measure_pair(name, size, repeats, **overrides)
        plain, stvit = (statistics.median(result.times[k]) * 1e3 for k in ("plain", "stvit-r"))
        flops = result.flops["stvit-r"] / result.flops["plain"]
        yield f"STViT-R vs plain {name}, {size[0]}x{size[1]}, forward", plain, stvit, f"{flops:.3f}"


def task_rows(quick: bool, skip_paper: bool, repeats: int, train_batch: int
              ) -> Iterator[tuple[str, str, float, float, float, float]]:
    """(task model, input, inference ms, inference FLOPs, training step ms, training FLOPs) of each task model:
    the quickstarts (at 64 px if ``quick``) and, unless ``skip_paper`` or ``quick``, the paper recipes."""
    import torch

    from densevit.tools.benchmark import build_model, detect_every_box, synthetic_batch, training_step

    cpu = torch.device("cpu")
    for name, config, size, paper in TASK_MODELS:
        if paper and (quick or skip_paper):
            continue
        if quick:
            size = (64, 48) if size[0] != size[1] else (64, 64)
        torch.manual_seed(0)
        model, cfg = build_model(str(CONFIGS / config))
        detect_every_box(model)
        model.eval()
        predict = partial(model.predict, synthetic_batch(model, 1, size, cpu))
        with torch.inference_mode():
            infer = median_ms_and_flops(predict, repeats)
        step = training_step(model, cfg, synthetic_batch(model, train_batch, size, cpu, targets=True))
        yield name, f"{size[0]}x{size[1]}", *infer, *median_ms_and_flops(step, repeats)


def median_ms_and_flops(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """The median milliseconds of ``repeats`` calls after one counted call (its warm-up), and that call's FLOPs."""
    import torch

    from densevit.benchmarking import count_flops, time_calls

    flops = count_flops(fn)
    return statistics.median(time_calls(fn, repeats, torch.device("cpu"), warmup=0)) * 1e3, flops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per implementation")
    parser.add_argument("--quick", action="store_true", help="tiny workloads, quickstart task models at 64 px")
    parser.add_argument("--skip-paper", action="store_true", help="leave out the paper-sized task models")
    parser.add_argument("--train-batch", type=int, default=2,
                        help="images per training step (2: the fewest UperNet's pooling BatchNorm trains on)")
    args = parser.parse_args()
    # imported after parsing (and in each function), so that --help answers at once
    import torch

    from densevit.benchmarking import FLOPS_CONVENTION, matmul_flops_per_second

    if args.threads:
        torch.set_num_threads(args.threads)

    load = os.getloadavg()[0]
    peak = matmul_flops_per_second(torch.device("cpu"), 256 if args.quick else None)
    rows = [row for rows in (msda_rows, roi_align_rows, stvit_rows) for row in rows(args.quick, args.repeats)]
    tasks = list(task_rows(args.quick, args.skip_paper, args.repeats, args.train_batch))
    width = max(len(r[0]) for r in rows)
    print(f"{torch.get_num_threads()} CPU threads, median of {args.repeats}, load average {load:.1f} before / "
          f"{os.getloadavg()[0]:.1f} after")
    print(f"{'workload':{width}s}  {'reference ms':>12s}  {'densevit ms':>11s}  {'ratio':>6s}  {'FLOPs ratio':>11s}")
    for name, ref, ours, flops in rows:
        print(f"{name:{width}s}  {ref:12.1f}  {ours:11.1f}  {ours / ref:6.3f}  {flops:>11s}")

    print(f"\nmatmul peak: {peak / 1e9:.1f} GFLOP/s (float32); {FLOPS_CONVENTION}")
    width = max(len(r[0]) for r in tasks)
    print(f"inference: one image; training step: {args.train_batch} images")
    print(f"{'task model':{width}s}  {'input':>9s}  {'infer ms':>9s}  {'GFLOPs':>8s}  {'% peak':>6s}  "
          f"{'train ms':>9s}  {'GFLOPs':>8s}  {'% peak':>6s}  {'train/infer':>11s}")
    for name, size, infer_ms, infer_flops, train_ms, train_flops in tasks:
        shares = [flops / (ms / 1e3) / peak * 100 for flops, ms in ((infer_flops, infer_ms), (train_flops, train_ms))]
        print(f"{name:{width}s}  {size:>9s}  {infer_ms:9.1f}  {infer_flops / 1e9:8.2f}  {shares[0]:6.1f}  "
              f"{train_ms:9.1f}  {train_flops / 1e9:8.2f}  {shares[1]:6.1f}  {train_ms / infer_ms:11.2f}")


if __name__ == "__main__":
    main()

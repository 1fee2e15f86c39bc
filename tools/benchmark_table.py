"""One table of the speed ratios the docs quote, each pair timed side by side in this run.

    python tools/benchmark_table.py --threads 2            # the workloads of docs/benchmarks.md
    python tools/benchmark_table.py --threads 2 --quick    # tiny workloads (a smoke test, seconds)

Rows: densevit's deformable attention against the per-level ``grid_sample`` formula (``benchmark_msda.py``),
densevit's RoIAlign against torchvision's (``benchmark_roi_align.py``), and STViT-R against the same backbone
without it (``benchmark_stvit.py``), each with the functions of its own tool. Each row prints both medians, their
ratio (densevit / reference, below 1 is faster) and the FLOPs ratio where it is counted. Task models' latency is
not in the table yet: ``tools/benchmark.py CONFIG`` measures one config.
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

import torch

from densevit.benchmarking import median_ms

TOOLS = Path(__file__).resolve().parent


def _tool(name: str) -> dict:
    """The functions of another benchmark tool (its ``main`` is not run)."""
    return runpy.run_path(str(TOOLS / name))


def msda_rows(quick: bool, repeats: int) -> Iterator[tuple[str, float, float, str]]:
    """Deformable attention, forward and forward + backward (ViT-CoMer-S shapes at 512x512 unless ``quick``)."""
    tool = _tool("benchmark_msda.py")
    args = SimpleNamespace(image_size=64 if quick else 512, batch=1, heads=2 if quick else 6,
                           channels=16 if quick else 384, points=4, device="cpu")
    value, shapes, loc, weights = tool["make_inputs"](args)
    ops = (tool["ms_deform_attn_grid_sample"], tool["ms_deform_attn"])

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
    tool = _tool("benchmark_roi_align.py")
    args = SimpleNamespace(image_size=64 if quick else 256, batch=2 if quick else 8, channels=8 if quick else 128,
                           rois=4 if quick else 64, device="cpu")
    maps, rois, level = tool["make_inputs"](args)
    scales = [1.0 / s for s in tool["STRIDES"]]
    ops = (tool["multilevel_roi_align_torchvision"], tool["multilevel_roi_align"])
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per implementation")
    parser.add_argument("--quick", action="store_true", help="tiny workloads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    load = os.getloadavg()[0]
    rows = [row for rows in (msda_rows, roi_align_rows, stvit_rows) for row in rows(args.quick, args.repeats)]
    width = max(len(r[0]) for r in rows)
    print(f"{torch.get_num_threads()} CPU threads, median of {args.repeats}, load average {load:.1f} before / "
          f"{os.getloadavg()[0]:.1f} after")
    print(f"{'workload':{width}s}  {'reference ms':>12s}  {'densevit ms':>11s}  {'ratio':>6s}  {'FLOPs ratio':>11s}")
    for name, ref, ours, flops in rows:
        print(f"{name:{width}s}  {ref:12.1f}  {ours:11.1f}  {ours / ref:6.3f}  {flops:>11s}")


if __name__ == "__main__":
    main()

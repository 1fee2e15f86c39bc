"""Parameters, FLOPs, latency and peak memory of a config's model (or of any module) on one input shape.

    python tools/benchmark.py CONFIG --shape 512 512 [--amp bf16] [--repeats 10] [--threads 2]
    python tools/benchmark.py configs/vitpose/CONFIG --shape 256 192 --batch 32 --threads 2   # person crops / s
    python tools/benchmark.py configs/restoration/CONFIG --shape 2048 2048 --repeats 1 [--tile 512]
    python tools/benchmark.py --module densevit.adapters.vit_comer.build_vit_comer \\
        --kwargs '{"size": "small", "task": "segmentation"}' --shape 512 512

A config's task model runs its raw network, ``forward(images)`` (no post-processing: Mask R-CNN's pyramid
maps, the segmentor's logits, the depth map, a pose model's heatmaps of a batch of person crops; throughput is
inputs per second: crops per second for a top-down pose model); ``--tile 512`` times a restoration model's tiled
inference (``restore``) instead of its whole-image forward: run the two in separate processes, as CPU peak memory
is the process's. ``--module`` builds a class or builder function
from its import path with ``--kwargs`` (JSON). Inputs are random [B, 3, H, W] images, already normalised.

FLOPs come from ``densevit.benchmarking`` (torch's FlopCounterMode with the CPU attention kernel counted too; a
multiply-add counts 2). Latency is the median (and minimum) over ``--repeats`` forward passes after
``--warmup`` passes, under ``torch.inference_mode``. Peak memory: on CUDA ``torch.cuda.max_memory_allocated``
above the memory held before the first pass; on the CPU the growth of the process's peak resident set size
(``resource.getrusage``) over all passes, a lower bound.
"""

from __future__ import annotations

import argparse
import importlib
import json
import resource
import statistics
from collections.abc import Callable
from contextlib import nullcontext
from functools import partial
from typing import Any

import torch
from torch import nn

from densevit.benchmarking import count_params, flop_counter, time_calls
from densevit.config import build, load_config, to_plain

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", nargs="?", help="a config file (or use --module)")
    parser.add_argument("--module", help="import path of a module class or builder, e.g. pkg.mod.build_model")
    parser.add_argument("--kwargs", default="{}", help="JSON keyword arguments for --module")
    parser.add_argument("--shape", type=int, nargs=2, metavar=("H", "W"), default=(512, 512))
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--amp", choices=sorted(AMP_DTYPES), help="autocast dtype (default: float32)")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, help="CPU threads (default: torch's)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--tile", type=int, help="restoration config: time tiled inference with this tile side")
    parser.add_argument("--tile-overlap", type=int, default=32, help="restoration config: overlap of the tiles")
    args = parser.parse_args()
    if (args.config is None) == (args.module is None):
        parser.error("give either a CONFIG or --module")
    if args.tile is not None and args.config is None:
        parser.error("--tile needs a restoration CONFIG")
    return args


def without_pretrained(cfg: Any) -> Any:
    """The config tree with every ``pretrained`` set to None: timing needs no weight files."""
    if isinstance(cfg, dict):
        return {k: None if k == "pretrained" else without_pretrained(v) for k, v in cfg.items()}
    if isinstance(cfg, list | tuple):
        return type(cfg)(without_pretrained(v) for v in cfg)
    return cfg


def build_target(args: argparse.Namespace) -> tuple[nn.Module, Callable[[torch.Tensor], Any], str]:
    """(whole model, function timed on the images, what it is)."""
    if args.module:
        path, _, name = args.module.rpartition(".")
        try:
            factory = getattr(importlib.import_module(path), name)
        except (ImportError, AttributeError, ValueError) as err:
            raise SystemExit(f"--module {args.module!r}: cannot import it ({err})") from err
        module = factory(**json.loads(args.kwargs))
        return module, module, f"{args.module}(**{args.kwargs})"
    cfg = load_config(args.config)
    model = build(without_pretrained(to_plain(cfg.model)), "model")
    if args.tile is not None:  # a restoration model's tiled inference (ImageRestorer.restore)
        if not hasattr(model, "restore"):
            raise SystemExit(f"--tile applies to restoration models, not to {type(model).__name__}")
        model.tile, model.tile_overlap = args.tile, args.tile_overlap
        return model, model.restore, f"{type(model).__name__}.restore (tiles {args.tile}, overlap {args.tile_overlap})"
    return model, model, f"{type(model).__name__}.forward"


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    model, fn, what = build_target(args)
    model.eval().to(device)
    x = torch.randn(args.batch, 3, *args.shape, device=device)
    autocast = (torch.autocast(device.type, dtype=AMP_DTYPES[args.amp]) if args.amp else nullcontext())
    parts = [m for m in (getattr(model, "backbone", None), getattr(model, "neck", None)) if isinstance(m, nn.Module)]

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base_memory = torch.cuda.memory_allocated(device)
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    with torch.inference_mode(), autocast:
        counter = flop_counter()
        with counter:
            fn(x)
        times = time_calls(partial(fn, x), args.repeats, device, warmup=args.warmup)
    if device.type == "cuda":
        memory = f"{(torch.cuda.max_memory_allocated(device) - base_memory) / 2**20:.0f} MiB (CUDA max allocated)"
    else:
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base_rss
        memory = f"{grown / 1024:.0f} MiB (growth of peak RSS, lower bound)"

    threads = f", {torch.get_num_threads()} threads" if device.type == "cpu" else ""
    median = statistics.median(times)
    gflops = counter.get_total_flops() / 1e9
    print(f"benchmarked:  {what}")
    print(f"input:        {args.batch}x3x{args.shape[0]}x{args.shape[1]}, {args.amp or 'float32'}, {device}{threads}")
    print(f"parameters:   {count_params(model) / 1e6:.2f} M"
          + "".join(f", {type(p).__name__} {count_params(p) / 1e6:.2f} M" for p in parts))
    print(f"FLOPs:        {gflops:.1f} G")
    print(f"latency:      median {median * 1e3:.1f} ms, min {min(times) * 1e3:.1f} ms over {args.repeats} runs "
          f"({gflops / median:.1f} GFLOP/s)")
    print(f"throughput:   {args.batch / median:.1f} inputs/s (median latency, batch {args.batch})")
    print(f"peak memory:  {memory}")


if __name__ == "__main__":
    main()

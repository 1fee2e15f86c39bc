"""Parameters, FLOPs, latency and peak memory of a config's whole task model (or of any module) on one input shape.

    python tools/benchmark.py CONFIG --shape 1024 1024 [--amp bf16] [--repeats 10] [--threads 2]
    python tools/benchmark.py CONFIG --shape 1024 1024 --train          # one training step instead
    python tools/benchmark.py configs/vitpose/CONFIG --shape 256 192 --batch 32 --threads 2   # person crops / s
    python tools/benchmark.py configs/restoration/CONFIG --shape 2048 2048 --repeats 1 [--tile 512]
    python tools/benchmark.py --module densevit.adapters.vit_comer.build_vit_comer \\
        --kwargs '{"size": "small", "task": "segmentation"}' --shape 512 512

A config's task model runs its inference path, ``predict`` on a batch of random images, as tools/test.py runs it:
post-processing and the config's test-time settings (flip test, sliding windows, ``--tile`` for restoration)
included. A detector runs its RPN, its box head on every post-NMS proposal (1000 an image in ViTDet's configs) and
its mask head on the detections; random weights score every box near 1 / classes, below the score threshold, so
the threshold is set to 0 and the mask head runs on ``detections_per_img`` (100) boxes an image, the most a trained
model returns and the count mmdet's FLOPs count uses. The RoIs each head saw are printed. ``--forward`` runs the raw
network ``forward(images)`` instead (Mask R-CNN's pyramid, the logits, the heatmaps of one pass: papers' convention);
``--train`` one training step as tools/train.py takes it: ``loss`` on random targets, backward, and the config's
optimiser step. ``--module`` builds a class or builder function from its import path with ``--kwargs`` (JSON) and
runs its forward. Inputs are random [B, 3, H, W] images, already normalised.

FLOPs come from ``densevit.benchmarking`` (torch's FlopCounterMode with the CPU attention kernel counted too; a
multiply-add counts 2), per submodule two levels deep; what is not counted is printed. Latency is the median (and
minimum) over ``--repeats`` calls after ``--warmup`` calls, under ``torch.inference_mode`` unless training. Peak
memory: on CUDA ``torch.cuda.max_memory_allocated`` above the memory held before the first call; on the CPU the
growth of the process's peak resident set size (``resource.getrusage``) over all calls, a lower bound.
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


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", nargs="?", help="a config file (or use --module)")
    parser.add_argument("--module", help="import path of a module class or builder, e.g. pkg.mod.build_model")
    parser.add_argument("--kwargs", default="{}", help="JSON keyword arguments for --module")
    parser.add_argument("--shape", type=int, nargs=2, metavar=("H", "W"), default=(512, 512))
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--amp", choices=("bf16", "fp16"), help="autocast dtype (default: float32)")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, help="CPU threads (default: torch's)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--forward", action="store_true", help="config: time the raw network forward(images) only")
    parser.add_argument("--train", action="store_true", help="config: time a training step (loss, backward, step)")
    parser.add_argument("--tile", type=int, help="restoration config: tiled inference with this tile side")
    parser.add_argument("--tile-overlap", type=int, default=32, help="restoration config: overlap of the tiles")
    args = parser.parse_args()
    if (args.config is None) == (args.module is None):
        parser.error("give either a CONFIG or --module")
    if args.config is None and (args.tile is not None or args.train or args.forward):
        parser.error("--tile, --train and --forward need a CONFIG")
    if args.train and (args.forward or args.tile is not None):
        parser.error("--train times a training step: it takes neither --forward nor --tile")
    return args


def main() -> None:
    args = parse_args()
    # imported after parsing, so that --help answers at once
    import torch

    from densevit.benchmarking import count_flops_by_module, count_params, time_calls
    from densevit.models import ImageRestorer
    from densevit.tools.benchmark import (
        AMP_DTYPES,
        build_model,
        detect_every_box,
        print_flops,
        record_rois,
        synthetic_batch,
        training_step,
    )

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    if args.module:
        path, _, name = args.module.rpartition(".")
        try:
            factory = getattr(importlib.import_module(path), name)
        except (ImportError, AttributeError, ValueError) as err:
            raise SystemExit(f"--module {args.module!r}: cannot import it ({err})") from err
        model, cfg = factory(**json.loads(args.kwargs)), None
        what = f"{args.module}(**{args.kwargs}).forward"
    else:
        model, cfg = build_model(args.config)
        what = f"{type(model).__name__}.{'loss + backward + optimiser step' if args.train else 'predict'}"
        if args.forward:
            what = f"{type(model).__name__}.forward"
        if args.tile is not None:  # ImageRestorer.predict then runs tiled
            if not isinstance(model, ImageRestorer):
                raise SystemExit(f"--tile applies to restoration models, not to {type(model).__name__}")
            model.tile, model.tile_overlap = args.tile, args.tile_overlap
            what += f" (tiles {args.tile}, overlap {args.tile_overlap})"
        if detect_every_box(model):
            what += ", detection score threshold 0"
    model.eval().to(device)
    rois = record_rois(model)
    if cfg is None or args.forward:
        x = torch.randn(args.batch, 3, *args.shape, device=device)
        fn: Callable[[], Any] = partial(model, x)
    elif args.train:
        fn = training_step(model, cfg, synthetic_batch(model, args.batch, args.shape, device, targets=True))
    else:
        fn = partial(model.predict, synthetic_batch(model, args.batch, args.shape, device))
    autocast = (torch.autocast(device.type, dtype=AMP_DTYPES[args.amp]) if args.amp else nullcontext())
    grad = nullcontext() if args.train else torch.inference_mode()

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base_memory = torch.cuda.memory_allocated(device)
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    with grad, autocast:
        counted = count_flops_by_module(fn, model)
        rois_counted = {name: list(counts) for name, counts in rois.items()}  # the counted call's, not the timed
        times = time_calls(fn, args.repeats, device, warmup=args.warmup)
    if device.type == "cuda":
        memory = f"{(torch.cuda.max_memory_allocated(device) - base_memory) / 2**20:.0f} MiB (CUDA max allocated)"
    else:
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base_rss
        memory = f"{grown / 1024:.0f} MiB (growth of peak RSS, lower bound)"

    threads = f", {torch.get_num_threads()} threads" if device.type == "cpu" else ""
    median = statistics.median(times)
    gflops = counted.total / 1e9
    print(f"benchmarked:  {what}")
    print(f"input:        {args.batch}x3x{args.shape[0]}x{args.shape[1]}, {args.amp or 'float32'}, {device}{threads}")
    print(f"parameters:   {count_params(model) / 1e6:.2f} M")
    print_flops(counted, rois_counted, args.batch)
    print(f"latency:      median {median * 1e3:.1f} ms, min {min(times) * 1e3:.1f} ms over {args.repeats} runs "
          f"({gflops / median:.1f} GFLOP/s)")
    print(f"throughput:   {args.batch / median:.1f} inputs/s (median latency, batch {args.batch})")
    print(f"peak memory:  {memory}")


if __name__ == "__main__":
    main()

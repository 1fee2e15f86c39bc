"""Backbone FLOPs and latency with and without STViT-R, in one run.

    python tools/benchmark_stvit.py swin-s --size 800 1216 --threads 2 --repeats 5
    python tools/benchmark_stvit.py vit-b --size 1024 1024 --threads 2 --repeats 5
    python tools/benchmark_stvit.py swin-s --size 800 1216 --threads 2 --amp bf16
    python tools/benchmark_stvit.py swin-s --size 512 512 --threads 2 --train

FLOPs come from ``densevit.benchmarking`` (torch's flop counter; a multiply-add counts 2). Latency is the time of
one forward under ``torch.inference_mode`` (``--train``: one training step, forward and backward of the sum of
the outputs' mean squares, in train mode), the two models alternating and swapping places every repeat so that
load on the machine hits both alike. Ratios: STViT-R's median time over the plain backbone's, the median of the
ratios of the pairs timed back to back, and the ratio of the fastest times; the load average is printed with them.
"""

from __future__ import annotations

import argparse
import os
import statistics
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch and the models are imported where used, so that --help answers at once
    import torch
    from torch import nn

MODELS = ("swin-s", "swin-b", "vit-s", "vit-b")
AMP_DTYPES = {"bf16": "bfloat16"}  # --amp -> torch dtype name


def build_pair(name: str, **overrides: object) -> tuple[nn.Module, nn.Module]:
    """(plain backbone, the same backbone with STViT-R) for a model name; ``overrides`` change the size's kwargs."""
    from densevit.adapters.stvit_r import STViTR
    from densevit.backbones.swin import SWIN_SIZES, SwinTransformer
    from densevit.backbones.swin_stvit_r import STVIT_R_SWIN_SIZES, SwinSTViTR
    from densevit.backbones.vit import VITDET_SIZES, ViT

    if name.startswith("swin-"):
        size = {"swin-s": "small", "swin-b": "base"}[name]
        return (SwinTransformer(**{**SWIN_SIZES[size], **overrides}),
                SwinSTViTR(**{**STVIT_R_SWIN_SIZES[size], **overrides}))
    vitdet_s = dict(VITDET_SIZES["base"], embed_dim=384, num_heads=6)  # the ViTDet-B layout at ViT-S's width
    vit = ViT(**{**{"vit-s": vitdet_s, "vit-b": VITDET_SIZES["base"]}[name], **overrides})
    return vit, STViTR(vit)


def step(model: nn.Module, x: torch.Tensor, train: bool, amp: str | None) -> Callable[[], object]:
    """What is timed: one forward under inference mode, or (``train``) one forward and backward."""
    import torch

    autocast = torch.autocast(x.device.type, dtype=getattr(torch, AMP_DTYPES[amp])) if amp else nullcontext()

    def forward() -> object:
        with torch.inference_mode(), autocast:
            return model(x)

    def train_step() -> object:
        with autocast:
            loss = sum(out.float().square().mean() for out in model(x))
        loss.backward()
        model.zero_grad(set_to_none=True)
        return loss

    model.train(train)
    return train_step if train else forward


@dataclass
class PairResult:
    """FLOPs, parameters and times (seconds, in timing order) of the plain backbone and its STViT-R version."""

    flops: dict[str, int]
    params: dict[str, int]
    times: dict[str, list[float]]

    def ratio(self) -> float:
        """STViT-R's median time over the plain backbone's."""
        return statistics.median(self.times["stvit-r"]) / statistics.median(self.times["plain"])

    def min_ratio(self) -> float:
        """STViT-R's fastest time over the plain backbone's (the runs least disturbed by other work)."""
        return min(self.times["stvit-r"]) / min(self.times["plain"])

    def paired_ratio(self) -> float:
        """Median over repeats of STViT-R's time over the plain backbone's timed next to it."""
        return statistics.median(s / p for s, p in zip(self.times["stvit-r"], self.times["plain"], strict=True))


def measure_pair(name: str, size: tuple[int, int], repeats: int, amp: str | None = None, train: bool = False,
                 batch: int = 1, **overrides: object) -> PairResult:
    """Build both backbones, count their FLOPs and time them alternately (one warm-up each)."""
    import torch

    from densevit.benchmarking import count_flops, count_params, time_call

    torch.manual_seed(0)
    models = dict(zip(("plain", "stvit-r"), build_pair(name, **overrides), strict=True))
    x = torch.randn(batch, 3, *size)
    steps = {key: step(m, x, train, amp) for key, m in models.items()}
    flops = {key: count_flops(fn) for key, fn in steps.items()}  # also the warm-up
    times: dict[str, list[float]] = {key: [] for key in models}
    for i in range(repeats):
        for key in (list(steps) if i % 2 == 0 else list(steps)[::-1]):
            times[key].append(time_call(steps[key]))
    return PairResult(flops, {key: count_params(m) for key, m in models.items()}, times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", choices=MODELS)
    parser.add_argument("--size", type=int, nargs=2, default=(800, 1216), metavar=("H", "W"))
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5, help="timed steps per model (after one warm-up)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--amp", choices=sorted(AMP_DTYPES), help="autocast dtype (default: float32)")
    parser.add_argument("--train", action="store_true", help="time a training step (forward + backward)")
    args = parser.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    load = os.getloadavg()
    result = measure_pair(args.model, tuple(args.size), args.repeats, args.amp, args.train, args.batch)
    what = "training step (forward + backward)" if args.train else "forward"
    print(f"{args.model} at {args.size[0]}x{args.size[1]}, batch {args.batch}, {args.amp or 'float32'}, {what}, "
          f"{torch.get_num_threads()} CPU threads, {args.repeats} repeats, load average {load[0]:.1f} before / "
          f"{os.getloadavg()[0]:.1f} after")
    for key, t in result.times.items():
        print(f"  {key:8s} params {result.params[key] / 1e6:7.2f} M  FLOPs {result.flops[key] / 1e9:8.1f} G  "
              f"time median {statistics.median(t):6.2f} s  min {min(t):6.2f} s  all {' '.join(f'{v:.2f}' for v in t)}")
    saving = 1 - result.flops["stvit-r"] / result.flops["plain"]
    print(f"  STViT-R / plain: FLOPs {1 - saving:.3f} ({100 * saving:.1f}% fewer), median time {result.ratio():.3f}, "
          f"median of the pairs {result.paired_ratio():.3f}, min time {result.min_ratio():.3f}")


if __name__ == "__main__":
    main()

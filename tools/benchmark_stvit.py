"""Backbone FLOPs and latency with and without STViT-R, in one run.

    python tools/benchmark_stvit.py swin-s --size 800 1216 --repeats 5
    python tools/benchmark_stvit.py vit-b --size 1024 1024 --repeats 5

FLOPs come from ``densevit.benchmarking`` (torch's flop counter; a multiply-add counts 2); latency is the forward
time of one image under ``torch.inference_mode``, the two models alternating so that load on the machine hits both
alike.
"""

from __future__ import annotations

import argparse
import statistics
from functools import partial

import torch
from torch import nn

from densevit.adapters.stvit_r import STViTR
from densevit.backbones.swin import SWIN_SIZES, SwinTransformer
from densevit.backbones.swin_stvit_r import STVIT_R_SWIN_SIZES, SwinSTViTR
from densevit.backbones.vit import VITDET_SIZES, ViT
from densevit.benchmarking import count_flops, count_params, time_call

# ViTDet-S: the ViTDet-B layout at the width of ViT-S / DeiT-S.
_VITDET_S = dict(VITDET_SIZES["base"], embed_dim=384, num_heads=6)


def build_pair(name: str) -> tuple[nn.Module, nn.Module]:
    """(plain backbone, the same backbone with STViT-R) for a model name."""
    if name.startswith("swin-"):
        size = {"swin-s": "small", "swin-b": "base"}[name]
        return SwinTransformer(**SWIN_SIZES[size]), SwinSTViTR(**STVIT_R_SWIN_SIZES[size])
    vit = ViT(**{"vit-s": _VITDET_S, "vit-b": VITDET_SIZES["base"]}[name])
    return vit, STViTR(vit)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", choices=["swin-s", "swin-b", "vit-s", "vit-b"])
    parser.add_argument("--size", type=int, nargs=2, default=(800, 1216), metavar=("H", "W"))
    parser.add_argument("--repeats", type=int, default=5, help="timed forwards per model (after one warm-up)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    models = dict(zip(("plain", "stvit-r"), (m.eval() for m in build_pair(args.model)), strict=True))
    x = torch.randn(1, 3, *args.size)
    times: dict[str, list[float]] = {name: [] for name in models}
    with torch.inference_mode():
        flops = {name: count_flops(m, x) for name, m in models.items()}
        for m in models.values():
            m(x)  # warm-up
        for _ in range(args.repeats):
            for name, m in models.items():
                times[name].append(time_call(partial(m, x)))

    print(f"{args.model} at {args.size[0]}x{args.size[1]}, batch 1, {torch.get_num_threads()} CPU threads, "
          f"{args.repeats} repeats")
    for name, m in models.items():
        params = count_params(m) / 1e6
        t = times[name]
        print(f"  {name:8s} params {params:7.2f} M  FLOPs {flops[name] / 1e9:8.1f} G  latency median "
              f"{statistics.median(t):6.2f} s  min {min(t):6.2f} s  all {' '.join(f'{v:.2f}' for v in t)}")
    saving = 1 - flops["stvit-r"] / flops["plain"]
    speedup = statistics.median(times["plain"]) / statistics.median(times["stvit-r"])
    print(f"  STViT-R: {100 * saving:.1f}% fewer FLOPs, median latency x{speedup:.2f} "
          f"({100 * (1 - 1 / speedup):.1f}% less)")


if __name__ == "__main__":
    main()

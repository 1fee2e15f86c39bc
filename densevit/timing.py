"""Wall-clock timing for the benchmark tools."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch

__all__ = ["median_ms", "print_speed_table"]


def median_ms(fn: Callable[[], object], repeats: int, device: torch.device) -> float:
    """Median wall time of ``fn()`` in milliseconds over ``repeats`` runs after one warm-up (CUDA synchronised)."""
    fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def print_speed_table(results: dict[str, tuple[float, float]]) -> None:
    """Print forward and forward + backward milliseconds of two implementations (reference first) and the speed-up."""
    width = max(len("implementation"), *map(len, results)) + 2
    print(f"{'implementation':{width}s} {'forward ms':>11s} {'fwd+bwd ms':>11s}")
    for name, (fwd, both) in results.items():
        print(f"{name:{width}s} {fwd:11.1f} {both:11.1f}")
    (ref_fwd, ref_both), (fwd, both) = results.values()
    print(f"speed-up: forward x{ref_fwd / fwd:.1f}, forward+backward x{ref_both / both:.1f}")

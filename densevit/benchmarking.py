"""Benchmarking: FLOP counting that also sees fused attention on the CPU, parameter counts, wall-clock timing and
the machine's measured matrix-multiply peak.

torch's counter has formulas for the CUDA attention kernels only: on the CPU ``scaled_dot_product_attention``
dispatches to ``_scaled_dot_product_flash_attention_for_cpu``, which it counts as 0 FLOPs, so every attention
block would silently vanish from a CPU count. ``flop_counter`` registers the same formula for the CPU kernel.
Timings synchronise CUDA before and after each call, so they measure the work and not its launch.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count, sdpa_flop_count

__all__ = [
    "FLOPS_CONVENTION",
    "NOT_COUNTED",
    "ModuleFlops",
    "count_flops",
    "count_flops_by_module",
    "count_params",
    "flop_counter",
    "matmul_flops_per_second",
    "median_ms",
    "print_speed_table",
    "time_call",
    "time_calls",
]

# --- FLOPs and parameters ----------------------------------------------------------------------------------

_aten = torch.ops.aten


def _cpu_sdpa_flops(query_shape: Any, key_shape: Any, value_shape: Any, *args: Any, out_shape: Any = None,
                    **kwargs: Any) -> int:
    """q: [B, heads, Lq, D], k: [B, heads, Lk, D], v: [B, heads, Lk, Dv] -> 2 * (Lq Lk D + Lq Lk Dv) per head."""
    return sdpa_flop_count(query_shape, key_shape, value_shape)


def _cpu_sdpa_backward_flops(grad_out_shape: Any, query_shape: Any, key_shape: Any, value_shape: Any, *args: Any,
                             out_shape: Any = None, **kwargs: Any) -> int:
    """The backward of the CPU attention kernel, with torch's formula for the CUDA kernels' backward."""
    return sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape, value_shape)


_EXTRA_FORMULAS: dict[Any, Callable[..., int]] = {
    _aten._scaled_dot_product_flash_attention_for_cpu: _cpu_sdpa_flops,
    _aten._scaled_dot_product_flash_attention_for_cpu_backward: _cpu_sdpa_backward_flops,
}


def flop_counter() -> FlopCounterMode:
    """A silent ``FlopCounterMode`` that also counts the CPU attention kernel (a multiply-add counts 2)."""
    return FlopCounterMode(display=False, custom_mapping=_EXTRA_FORMULAS)


def count_flops(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> int:
    """FLOPs of one call ``fn(*args, **kwargs)``."""
    with flop_counter() as counter:
        fn(*args, **kwargs)
    return counter.get_total_flops()


FLOPS_CONVENTION = ("a multiply-add counts 2 FLOPs (torch.utils.flop_counter); fvcore, detectron2 and mmcv count it "
                    "as 1, so their figures (and most papers') are half these")
NOT_COUNTED = ("only matrix multiplies, convolutions (transposed ones too) and scaled_dot_product_attention are "
               "counted; not element-wise ops (norms, activations, softmax, residual adds, box decoding, the "
               "optimiser's update), resampling (interpolate; grid_sample: mask pasting, deformable attention's "
               "sampling), gathers and embedding bags (RoIAlign's bilinear sampling), sorting, top-k, NMS")


@dataclass
class ModuleFlops:
    """FLOPs of one call in total and inside submodules: dotted name -> FLOPs, and how often each ran."""

    total: int
    flops: dict[str, int] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)


def count_flops_by_module(fn: Callable[[], Any], module: nn.Module, depth: int = 2) -> ModuleFlops:
    """FLOPs of one call ``fn()``, and of each submodule of ``module`` down to ``depth`` that ran during it.

    ``fn`` may be any method of ``module`` (``predict``, ``loss``), not only its ``forward``: the submodules are
    found by name in ``module`` and timed in and out with hooks, so only FLOPs of their forward passes are theirs.
    """
    counter = flop_counter()
    result = ModuleFlops(0)
    started: dict[str, list[int]] = {}

    def enter(name: str) -> Callable[..., None]:
        def hook(*_: Any) -> None:
            result.flops.setdefault(name, 0)  # a module before its submodules, in the order they first ran
            started.setdefault(name, []).append(counter.get_total_flops())
        return hook

    def leave(name: str) -> Callable[..., None]:
        def hook(*_: Any) -> None:
            result.flops[name] = result.flops.get(name, 0) + counter.get_total_flops() - started[name].pop()
            result.calls[name] = result.calls.get(name, 0) + 1
        return hook

    handles = []
    for name, sub in module.named_modules():
        if name and name.count(".") < depth:
            handles += [sub.register_forward_pre_hook(enter(name)), sub.register_forward_hook(leave(name))]
    try:
        with counter:
            fn()
    finally:
        for handle in handles:
            handle.remove()
    result.total = counter.get_total_flops()
    return result


def count_params(module: nn.Module) -> int:
    """Number of parameters of ``module`` (trainable or not)."""
    return sum(p.numel() for p in module.parameters())


# --- wall-clock time ---------------------------------------------------------------------------------------


def _sync(device: torch.device | None) -> None:
    if device is not None and device.type == "cuda":
        torch.cuda.synchronize(device)


def time_call(fn: Callable[[], object], device: torch.device | None = None) -> float:
    """Wall time of one call ``fn()`` in seconds (CUDA synchronised before and after on a CUDA ``device``)."""
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def time_calls(fn: Callable[[], object], repeats: int, device: torch.device | None = None,
               warmup: int = 1) -> list[float]:
    """Wall times of ``repeats`` calls ``fn()`` in seconds, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    return [time_call(fn, device) for _ in range(repeats)]


def median_ms(fn: Callable[[], object], repeats: int, device: torch.device) -> float:
    """Median wall time of ``fn()`` in milliseconds over ``repeats`` runs after one warm-up (CUDA synchronised)."""
    return statistics.median(time_calls(fn, repeats, device)) * 1e3


def matmul_flops_per_second(device: torch.device, size: int | None = None, repeats: int = 3,
                             dtype: torch.dtype = torch.float32) -> float:
    """The fastest of ``repeats`` [size, size] @ [size, size] products in FLOP/s: the machine's practical peak.

    ``size`` defaults to 2048 on the CPU (about 0.2 s a product on 2 cores) and 8192 elsewhere.
    """
    size = size or (2048 if device.type == "cpu" else 8192)
    a, b = (torch.randn(size, size, device=device, dtype=dtype) for _ in range(2))
    return 2 * size**3 / min(time_calls(lambda: a @ b, repeats, device))


def print_speed_table(results: dict[str, tuple[float, float]]) -> None:
    """Print forward and forward + backward milliseconds of two implementations (reference first) and the speed-up."""
    width = max(len("implementation"), *map(len, results)) + 2
    print(f"{'implementation':{width}s} {'forward ms':>11s} {'fwd+bwd ms':>11s}")
    for name, (fwd, both) in results.items():
        print(f"{name:{width}s} {fwd:11.1f} {both:11.1f}")
    (ref_fwd, ref_both), (fwd, both) = results.values()
    print(f"speed-up: forward x{ref_fwd / fwd:.1f}, forward+backward x{ref_both / both:.1f}")

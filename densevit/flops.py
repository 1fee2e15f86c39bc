"""FLOP counting with ``torch.utils.flop_counter`` that also sees fused attention on the CPU.

torch's counter has formulas for the CUDA attention kernels only: on the CPU ``scaled_dot_product_attention``
dispatches to ``_scaled_dot_product_flash_attention_for_cpu``, which it counts as 0 FLOPs, so every attention
block would silently vanish from a CPU count. ``flop_counter`` registers the same formula for the CPU kernel.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count, sdpa_flop_count

__all__ = ["count_flops", "flop_counter"]

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

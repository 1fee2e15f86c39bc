"""A weighted bag of table rows, ``F.embedding_bag`` with per-sample weights, with a faster backward on the CPU.

Bilinear sampling ops (deformable attention, RoIAlign) are weighted bags: each output is a weighted sum of the
corner rows of a feature table. ``F.embedding_bag`` computes that in one fused, parallel kernel without
materialising the gathered rows, but on the CPU its backward for the table (``_embedding_bag_dense_backward``) is
slow (a third of a ViT-CoMer training step); ``weighted_bag`` computes the same gradient as a second, transposed
weighted bag (5x faster there).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["weighted_bag"]


class _WeightedBagCPU(torch.autograd.Function):
    """out[n] = sum_j weight[n, j] * table[rows[n, j]]; the table's gradient as the transposed bag (see below)."""

    @staticmethod
    def forward(ctx, rows: Tensor, table: Tensor, weight: Tensor) -> Tensor:
        ctx.save_for_backward(rows, table, weight)
        return F.embedding_bag(rows, table, per_sample_weights=weight, mode="sum")

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out: Tensor) -> tuple[None, Tensor | None, Tensor | None]:
        rows, table, weight = ctx.saved_tensors
        grad_table = grad_weight = None
        if ctx.needs_input_grad[1]:
            # grad_table[t] = sum over the (n, j) with rows[n, j] == t of weight[n, j] * grad_out[n]: a weighted
            # bag per table row over grad_out's rows, once the entries are sorted by table row.
            flat = rows.reshape(-1)
            sorted_rows, order = torch.sort(flat, stable=True)
            offsets = torch.zeros(table.shape[0], dtype=torch.long, device=table.device)
            offsets[1:] = torch.bincount(sorted_rows, minlength=table.shape[0])[:-1].cumsum(0)
            bags = torch.div(order, rows.shape[1], rounding_mode="floor")
            grad_table = F.embedding_bag(bags, grad_out, offsets, per_sample_weights=weight.reshape(-1)[order],
                                         mode="sum")
        if ctx.needs_input_grad[2]:
            # embedding_bag's own gradient for the weights (a fused gather + dot), the table held constant
            with torch.enable_grad():
                w = weight.detach().requires_grad_()
                out = F.embedding_bag(rows, table.detach(), per_sample_weights=w, mode="sum")
                (grad_weight,) = torch.autograd.grad(out, w, grad_out)
        return None, grad_table, grad_weight


def weighted_bag(rows: Tensor, table: Tensor, weight: Tensor) -> Tensor:
    """rows [N, K] (int32/int64), table [T, D], weight [N, K] -> [N, D]: out[n] = sum_j weight[n, j] table[rows[n, j]].

    ``F.embedding_bag`` with per-sample weights; on the CPU with a faster backward of the same gradients.
    """
    if table.device.type == "cpu" and torch.is_grad_enabled() and (table.requires_grad or weight.requires_grad):
        return _WeightedBagCPU.apply(rows, table, weight)
    return F.embedding_bag(rows, table, per_sample_weights=weight, mode="sum")

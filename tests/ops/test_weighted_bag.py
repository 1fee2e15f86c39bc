"""weighted_bag: the CPU backward against embedding_bag's own."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from densevit.ops.weighted_bag import weighted_bag


@pytest.mark.parametrize("index_dtype", [torch.int32, torch.int64])
def test_weighted_bag_gradients_equal_embedding_bag(index_dtype):
    """The CPU backward (the table's gradient as a transposed bag) gives embedding_bag's own gradients."""
    g = torch.Generator().manual_seed(0)
    # repeated rows must accumulate; table rows 5 and 6 are never read and must get a zero gradient
    rows = torch.randint(0, 5, (7, 4), generator=g).to(index_dtype)
    table = torch.randn(7, 3, generator=g, dtype=torch.float64)
    weight = torch.randn(7, 4, generator=g, dtype=torch.float64)
    upstream = torch.randn(7, 3, generator=g, dtype=torch.float64)
    grads = []
    for fn in (weighted_bag, lambda r, t, w: F.embedding_bag(r, t, per_sample_weights=w, mode="sum")):
        t, w = table.clone().requires_grad_(), weight.clone().requires_grad_()
        out = fn(rows, t, w)
        grads.append((out, *torch.autograd.grad(out, (t, w), upstream)))
    for ours, ref in zip(*grads, strict=True):
        torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)

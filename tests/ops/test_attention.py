"""grouped_attention: each group attends to its own keys, with a broadcast bias, fused or explicit."""

from __future__ import annotations

import math

import pytest
import torch

from densevit.ops.attention import grouped_attention


@pytest.mark.parametrize("fused", [False, True])
def test_grouped_attention_equals_attention_per_group_and_head(fused):
    torch.manual_seed(0)
    b, g, lq, lk, c, heads = 2, 3, 4, 6, 8, 2
    q = torch.randn(b, g, lq, c, dtype=torch.float64)
    kv = torch.randn(b, g, lk, 2 * c, dtype=torch.float64)
    bias = torch.randn(g, 1, 1, lk, dtype=torch.float64)  # one key mask per group, shared by batch, heads, queries
    out = grouped_attention(q, kv, heads, bias, fused=fused)
    hd = c // heads
    for i in range(b):
        for j in range(g):
            for h in range(heads):
                qh = q[i, j, :, h * hd:(h + 1) * hd]
                kh = kv[i, j, :, h * hd:(h + 1) * hd]
                vh = kv[i, j, :, c + h * hd:c + (h + 1) * hd]
                attn = (qh @ kh.T / math.sqrt(hd) + bias[j, 0]).softmax(-1)
                torch.testing.assert_close(out[i, j, :, h * hd:(h + 1) * hd], attn @ vh, rtol=1e-12, atol=1e-12)

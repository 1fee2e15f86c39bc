"""Multi-head attention of groups of queries (windows, regions, a whole grid) to their own keys and values.

One function shared by the ViT's ``Attention`` and STViT-R's semantic blocks: the projections and any position
bias belong to the caller's module; this is the part in between.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["grouped_attention"]


def grouped_attention(q: Tensor, kv: Tensor, num_heads: int, bias: Tensor | None = None, fused: bool = True) -> Tensor:
    """Each group's queries attend to the same group's keys and values (no input or output projection).

    q: [B, G, Lq, C], kv: [B, G, Lk, 2C] (keys then values, as one projection gives them), bias: additive logits
    broadcastable to [B, G, heads, Lq, Lk] -> [B, G, Lq, C]. ``fused`` uses ``F.scaled_dot_product_attention``,
    otherwise the explicit softmax(q k^T * scale + bias) v (same numbers within float tolerance).
    """
    b, g, lq, c = q.shape
    lk = kv.shape[2]
    head_dim = c // num_heads
    # Groups go into the batch axis: 4-D inputs take PyTorch's fused CPU kernel, 5-D ones the slow math path.
    q = q.reshape(b * g, lq, num_heads, head_dim).transpose(1, 2)  # [B*G, heads, Lq, hd]
    k, v = kv.reshape(b * g, lk, 2, num_heads, head_dim).permute(2, 0, 3, 1, 4).unbind(0)  # [B*G, heads, Lk, hd]
    if bias is not None:
        bias = torch.broadcast_to(bias, (b, g, *bias.shape[-3:])).reshape(b * g, *bias.shape[-3:]).to(q.dtype)
    if fused:
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
    else:
        logits = (q * head_dim**-0.5) @ k.transpose(-2, -1)  # [B*G, heads, Lq, Lk]
        if bias is not None:
            logits = logits + bias
        out = logits.softmax(dim=-1) @ v
    return out.transpose(1, 2).reshape(b, g, lq, c)

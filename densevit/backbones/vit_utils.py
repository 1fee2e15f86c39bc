"""Tensor maths of the plain ViT: windows, decomposed relative positions, absolute-position resizing.

Plain functions on tensors (no parameters), so the attention module, tests and other backbones can share them.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from densevit.ops.resize import pad_to_multiple

__all__ = [
    "decomposed_rel_pos_bias",
    "get_rel_pos",
    "resize_abs_pos",
    "window_partition",
    "window_unpartition",
]


def window_partition(x: Tensor, window_size: int) -> tuple[Tensor, tuple[int, int]]:
    """Split a token grid into windows, zero-padding it bottom/right to a multiple of the window.

    x: [B, H, W, C] -> (windows [B * nH * nW, ws, ws, C], padded size (Hp, Wp)).
    """
    b, _, _, c = x.shape
    x = pad_to_multiple(x, window_size, channels_last=True)
    hp, wp = x.shape[1:3]
    x = x.view(b, hp // window_size, window_size, wp // window_size, window_size, c)
    windows = x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window_size, window_size, c)
    return windows, (hp, wp)


def window_unpartition(
    windows: Tensor, window_size: int, pad_hw: tuple[int, int], hw: tuple[int, int]
) -> Tensor:
    """Inverse of ``window_partition``: reassemble the windows and crop the padding away.

    windows: [B * nH * nW, ws, ws, C] -> [B, H, W, C].
    """
    hp, wp = pad_hw
    h, w = hw
    nh, nw = hp // window_size, wp // window_size
    b = windows.shape[0] // (nh * nw)
    x = windows.view(b, nh, nw, window_size, window_size, -1).permute(0, 1, 3, 2, 4, 5).reshape(b, hp, wp, -1)
    return x[:, :h, :w, :].contiguous() if (hp, wp) != (h, w) else x


def get_rel_pos(q_size: int, k_size: int, rel_pos: Tensor) -> Tensor:
    """Relative-position embeddings for every (query, key) pair along one axis.

    rel_pos: [L, D] table indexed by (q - k + offset); it is resized linearly (align_corners=False) to
    2 * max(q_size, k_size) - 1 rows when its length differs. Returns [q_size, k_size, D].
    """
    num_rel = 2 * max(q_size, k_size) - 1
    if rel_pos.shape[0] != num_rel:
        # [L, D] -> [1, D, L] so that F.interpolate resizes along the table axis.
        rel_pos = F.interpolate(rel_pos.t().unsqueeze(0), size=num_rel, mode="linear").squeeze(0).t()
    # When q and k sizes differ, the shorter axis is stretched onto the longer one's coordinates.
    q_coords = torch.arange(q_size, device=rel_pos.device)[:, None] * max(k_size / q_size, 1.0)
    k_coords = torch.arange(k_size, device=rel_pos.device)[None, :] * max(q_size / k_size, 1.0)
    index = (q_coords - k_coords) + (k_size - 1) * max(q_size / k_size, 1.0)
    return rel_pos[index.long()]


def decomposed_rel_pos_bias(
    q: Tensor, rel_pos_h: Tensor, rel_pos_w: Tensor, q_size: tuple[int, int], k_size: tuple[int, int]
) -> Tensor:
    """MViTv2 decomposed relative-position bias ``q . R_h + q . R_w`` (added to the scaled q k^T logits).

    q: [..., q_h * q_w, D] (unscaled queries), rel_pos_h: [Lh, D], rel_pos_w: [Lw, D]
    -> bias [..., q_h * q_w, k_h * k_w] in q's dtype.
    """
    q_h, q_w = q_size
    k_h, k_w = k_size
    r_h = get_rel_pos(q_h, k_h, rel_pos_h)  # [q_h, k_h, D]
    r_w = get_rel_pos(q_w, k_w, rel_pos_w)  # [q_w, k_w, D]
    lead = q.shape[:-2]
    grid_q = q.reshape(*lead, q_h, q_w, q.shape[-1])
    # einsum returns permuted views of a batched matmul (q_h or q_w outermost), and their broadcast sum took that
    # layout, so the reshape below copied the full bias once more (0.8 GB for a global block of ViTDet-B at 1024).
    # The two small halves are made contiguous instead: the sum then is, the reshape is a view, the values are the same.
    bias_h = torch.einsum("...hwc,hkc->...hwk", grid_q, r_h.to(q.dtype)).contiguous()  # [..., q_h, q_w, k_h]
    bias_w = torch.einsum("...hwc,wkc->...hwk", grid_q, r_w.to(q.dtype)).contiguous()  # [..., q_h, q_w, k_w]
    bias = bias_h[..., :, None] + bias_w[..., None, :]  # [..., q_h, q_w, k_h, k_w]
    return bias.view(*lead, q_h * q_w, k_h * k_w)


def resize_abs_pos(abs_pos: Tensor, hw: tuple[int, int], has_cls_token: bool = True) -> Tensor:
    """Absolute position table -> position grid for an (h, w) token grid.

    abs_pos: [1, (1 +) N, C] with N a square number (the pretraining grid) -> [1, h, w, C]. The class-token
    slot is dropped; the grid is resized bicubically (align_corners=False) when it differs from (h, w).
    """
    if has_cls_token:
        abs_pos = abs_pos[:, 1:]
    num = abs_pos.shape[1]
    size = math.isqrt(num)
    if size * size != num:
        raise ValueError(f"resize_abs_pos: expected a square grid of positions, found {num} entries")
    grid = abs_pos.reshape(1, size, size, -1)
    if (size, size) == tuple(hw):
        return grid
    grid = F.interpolate(grid.permute(0, 3, 1, 2), size=tuple(hw), mode="bicubic", align_corners=False)
    return grid.permute(0, 2, 3, 1)

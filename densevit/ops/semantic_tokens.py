"""Tensor maths of STViT-R's semantic tokens: pooling, window grouping, region gathering, padding masks.

Plain functions on tensors, no parameters; ``densevit.ops.dumbbell`` runs blocks on them. Token maps are
``[B, H, W, D]`` grids; a *region* is the ``kernel x kernel`` neighbourhood that one window (``stride x stride``
tokens) reads its keys and values from.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from densevit.ops.resize import pad_to_multiple

__all__ = [
    "MASK_MODES",
    "RELEASED_MASK_VALUE",
    "gather_regions",
    "group_windows",
    "pad_grid",
    "padding_mask",
    "pooled_rows_valid",
    "region_padding",
    "semantic_pool",
    "ungroup_windows",
]

# How keys that are padding are masked: "released" reproduces the released code (see ``padding_mask``),
# "valid" masks exactly the padded keys, "none" masks nothing.
MASK_MODES = ("released", "valid", "none")
# The released code adds this finite value (not -inf) to masked logits.
RELEASED_MASK_VALUE = -1000.0


def semantic_pool(x: Tensor, window: int, pooled: int) -> Tensor:
    """Adaptive max pooling of every ``window x window`` window of a grid to ``pooled x pooled`` tokens.

    x: [B, H, W, C] -> [B, ceil(H / window) * pooled, ceil(W / window) * pooled, C]. The grid is zero-padded
    bottom/right to a multiple of the window first, and the zeros take part in the max (as released).
    """
    h, w = x.shape[1:3]
    nh, nw = math.ceil(h / window), math.ceil(w / window)
    x = pad_to_multiple(x, window, channels_last=True).permute(0, 3, 1, 2)
    # Pooling the whole map to (nh * pooled, nw * pooled) uses the bins [floor(i * window / pooled),
    # ceil((i + 1) * window / pooled)) shifted by whole windows: exactly the per-window pooling, in one call.
    pooled_map = F.adaptive_max_pool2d(x, (nh * pooled, nw * pooled))
    return pooled_map.permute(0, 2, 3, 1)


def pooled_rows_valid(size: int, window: int, pooled: int, num_windows: int, device: torch.device) -> Tensor:
    """Which pooled rows (or columns) hold at least one real token: bool [num_windows * pooled].

    A grid of ``size`` real rows padded to ``num_windows * window`` is pooled per window to ``pooled`` rows;
    pooled row ``a * pooled + k`` starts at real row ``a * window + floor(k * window / pooled)``.
    """
    index = torch.arange(num_windows * pooled, device=device)
    start = (index // pooled) * window + ((index % pooled) * window) // pooled
    return start < size


def region_padding(stride: int, kernel: int) -> tuple[int, int]:
    """Padding (before, after) that centres a ``kernel`` region on each ``stride`` window: 14 on 7 -> (3, 4)."""
    if kernel < stride:
        raise ValueError(f"region kernel {kernel} must be at least the window stride {stride}")
    extra = kernel - stride
    return extra // 2, extra - extra // 2


def pad_grid(x: Tensor, top: int, bottom: int, left: int, right: int, value: Tensor | None = None) -> Tensor:
    """Pad a grid with a token vector (zeros when ``value`` is None).

    x: [B, H, W, D], value: [D] -> [B, top + H + bottom, left + W + right, D].
    """
    if value is None:
        return F.pad(x, (0, 0, left, right, top, bottom))
    b, h, w, d = x.shape
    out = value.to(x.dtype).expand(b, top + h + bottom, left + w + right, d).clone()
    out[:, top : top + h, left : left + w] = x
    return out


def gather_regions(x: Tensor, kernel: int, stride: int) -> Tensor:
    """Every ``kernel x kernel`` region at step ``stride`` (already padded): [B, H, W, D] -> [B, nW, k * k, D].

    Regions are numbered row-major, like the windows of ``group_windows``; the copy happens once, here. On a
    contiguous strip exactly one region wide (W = kernel) each region is a contiguous run of the strip, and the
    result is a view: gathering a grid strip by strip copies each token kernel / stride times, not (kernel /
    stride)^2 times.
    """
    b, _, _, d = x.shape
    regions = x.unfold(1, kernel, stride).unfold(2, kernel, stride)  # [B, nh, nw, D, k, k] (a view)
    nh, nw = regions.shape[1], regions.shape[2]
    return regions.permute(0, 1, 2, 4, 5, 3).reshape(b, nh * nw, kernel * kernel, d)


def group_windows(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Split a grid into non-overlapping windows: [B, H, W, D] -> [B, nW, h * w, D] (H, W multiples of size)."""
    b, h, w, d = x.shape
    sh, sw = size
    if h % sh or w % sw:
        raise ValueError(f"group_windows: grid {h}x{w} is not a multiple of the window {sh}x{sw}")
    x = x.view(b, h // sh, sh, w // sw, sw, d).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, (h // sh) * (w // sw), sh * sw, d)


def ungroup_windows(x: Tensor, size: tuple[int, int], grid: tuple[int, int]) -> Tensor:
    """Inverse of ``group_windows``: [B, nW, h * w, D] -> [B, H, W, D] for a grid of ``grid`` tokens."""
    b, _, _, d = x.shape
    sh, sw = size
    gh, gw = grid
    x = x.view(b, gh // sh, gw // sw, sh, sw, d).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, gh, gw, d)


def _slice_start(size: int, pad: int) -> int:
    # Python's x[-pad:] with pad == 0 (or pad >= size) selects the whole axis.
    return size - pad if 0 < pad < size else 0


def padding_mask(
    mode: str,
    grid: tuple[int, int],
    valid: tuple[Tensor, Tensor],
    image_pad: tuple[int, int],
    kernel: int,
    stride: int,
) -> Tensor | None:
    """Additive key mask for the regions of a ``grid`` of keys: [nW, 1, 1, k * k] (broadcasts over heads, queries).

    The key grid is padded by ``region_padding(stride, kernel)`` on every side before the regions are taken;
    those outer keys are always masked (except in mode "none").

    * ``"valid"``: keys in rows / columns whose ``valid`` flag (bool [rows], bool [cols]) is False get -inf.
    * ``"released"``: the released code's rule, kept so that released weights give released outputs. With
      ``image_pad = (pad_bottom, pad_right)`` (the padding of the *image-token* grid, also when the keys are
      semantic tokens) it masks ``grid[-pad_bottom:, -pad_right:]`` with -1000: only the bottom-right corner
      when both pads are positive, and the *whole* grid when a pad is 0 (which, all logits being shifted alike,
      masks nothing inside the grid, so the outer padding is then attended like real keys).
    * ``"none"``: no mask (returns None).
    """
    if mode not in MASK_MODES:
        raise ValueError(f"padding mask mode {mode!r} is not one of {MASK_MODES}")
    if mode == "none":
        return None
    gh, gw = grid
    before, after = region_padding(stride, kernel)
    rows, cols = valid
    if mode == "valid":
        blocked = ~(rows[:, None] & cols[None, :])
        fill = float("-inf")
        mask = torch.zeros(gh, gw, device=rows.device).masked_fill(blocked, fill)
    else:
        fill = RELEASED_MASK_VALUE
        mask = torch.zeros(gh, gw, device=rows.device)
        mask[_slice_start(gh, image_pad[0]) :, _slice_start(gw, image_pad[1]) :] = fill
    mask = F.pad(mask, (before, after, before, after), value=fill)
    regions = gather_regions(mask[None, :, :, None], kernel, stride)  # [1, nW, k * k, 1]
    return regions[0, :, None, None, :, 0]

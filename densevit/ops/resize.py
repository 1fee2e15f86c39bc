"""Resizing and padding maths shared by backbones, adapters, heads, task models and batching.

Plain functions on tensors and sizes: zero-padding bottom/right to a size or to a multiple, the keep-ratio size
of a rescale, and the bilinear resize the segmentation heads and models use.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor

__all__ = ["keep_ratio_size", "pad_to_multiple", "pad_to_size", "resize", "size_pair"]


def size_pair(size: int | Sequence[int]) -> tuple[int, int]:
    """A size given as one int (square) or as (h, w) -> (h, w)."""
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def pad_to_size(x: Tensor, size: Sequence[int], value: float = 0.0, channels_last: bool = False) -> Tensor:
    """Pad [..., H, W] (or [..., H, W, C] with ``channels_last``) bottom/right with ``value`` to ``size`` (h, w).

    Returns ``x`` itself when it already has that size.
    """
    h, w = x.shape[-3:-1] if channels_last else x.shape[-2:]
    pad_h, pad_w = size[0] - h, size[1] - w
    if not (pad_h or pad_w):
        return x
    return F.pad(x, (0, 0, 0, pad_w, 0, pad_h) if channels_last else (0, pad_w, 0, pad_h), value=value)


def pad_to_multiple(x: Tensor, multiple: int, channels_last: bool = False) -> Tensor:
    """Zero-pad [..., H, W] (or [..., H, W, C] with ``channels_last``) bottom/right so that H and W are multiples
    of ``multiple``: [.., H, W] -> [.., ceil(H / m) * m, ceil(W / m) * m]."""
    h, w = x.shape[-3:-1] if channels_last else x.shape[-2:]
    return pad_to_size(x, (h + (-h) % multiple, w + (-w) % multiple), channels_last=channels_last)


def keep_ratio_size(h: int, w: int, scale: Sequence[float]) -> tuple[int, int]:
    """Size (h', w') of an h x w image rescaled to fit ``scale`` = (long, short) bounds, keeping its aspect ratio.

    mmcv's ``rescale_size``: factor = min(long / max(h, w), short / min(h, w)), sides rounded half up.
    """
    factor = min(max(scale) / max(h, w), min(scale) / min(h, w))
    return int(h * factor + 0.5), int(w * factor + 0.5)


def resize(x: Tensor, size: Sequence[int], channels_last: bool = False) -> Tensor:
    """Bilinear resize (align_corners=False, as mmsegmentation) of [B, C, h, w] (or [B, h, w, C] with
    ``channels_last``) to ``size`` (h', w'); no-op when equal."""
    if channels_last:
        return resize(x.permute(0, 3, 1, 2), size).permute(0, 2, 3, 1)
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)

"""STViT-R's dumbbell units (Chang et al., CVPR 2023): blocks that run on a few semantic tokens, then recover the map.

A *dumbbell unit* is a run of blocks, each playing one role (``ROLES``):

==========  ================================================================================================
``image``   an ordinary block on the image tokens ``x`` [B, H, W, C]
``init``    semantic tokens ``s`` := each ``window x window`` window of ``x`` max-pooled to ``pooled x pooled``
            tokens, which attend (as queries) to the image tokens of an ``init_kernel`` region around the window
``refine``  ``s`` attend again to the image tokens, in a ``refine_kernel`` region
``local``   attention among the ``pooled x pooled`` semantic tokens of each window
``global``  attention among all semantic tokens
``recover`` each window of image tokens (as they left the last ``image`` block) attends to the
            ``recover_kernel x recover_kernel`` neighbourhood of its semantic tokens; residual on ``x``
==========  ================================================================================================

The released Swin variant runs ``image, init, refine, local, global, recover`` three times in stage 3
(``densevit.backbones.swin_stvit_r``); the plain-ViT adapter ``densevit.adapters.stvit_r.STViTR`` gives the
ViT's own blocks these roles. A block takes any role other than ``image`` through the ``RoleBlock`` methods.

Keys and values are normalised and projected once per token on the dense map, and only then gathered into the
overlapping regions (the released code projects every gathered copy: 4x, 9x and 81x the work for the 14, 21
and 27 regions). A zero-padded token is normalised and projected like any other, so the padding is filled with
``kv(norm1(0))`` and the outputs are identical.

Speed: the overlapping regions are attended one column of windows at a time, as views of that column's strip
of keys and values (``_attend_regions``), and the padding masks are built once per input size. Gathering all
27x27 regions of Swin-S at 800x1216 at once copied 200 MB into a fresh allocation, page-faulted in on every call,
which cost more than the copy itself; the strips hold 44 MB in 4 MB pieces.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import wraps
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from densevit.ops.resize import pad_to_multiple
from densevit.ops.semantic_tokens import (
    MASK_MODES,
    gather_regions,
    group_windows,
    pad_grid,
    padding_mask,
    pooled_rows_valid,
    region_padding,
    semantic_pool,
    ungroup_windows,
)

__all__ = [
    "PAPER_UNIT",
    "ROLES",
    "DumbbellConfig",
    "RoleBlock",
    "apply_role",
    "check_roles",
    "dumbbell_roles",
    "recover_image_tokens",
    "semantic_cross_attention",
    "semantic_self_attention",
]

ROLES = ("image", "init", "refine", "local", "global", "recover")
# The dumbbell unit of the released STViT-R-Swin (6 blocks).
PAPER_UNIT = ("image", "init", "refine", "local", "global", "recover")
_SEMANTIC_ROLES = ("refine", "local", "global")


@dataclass(frozen=True)
class DumbbellConfig:
    """Geometry of the dumbbell units (sizes in tokens) and how padded keys are masked (``padding_mask``)."""

    window: int = 7
    pooled: int = 3
    init_kernel: int = 14
    refine_kernel: int = 21
    recover_kernel: int = 27
    pad_mask: str = "released"

    def __post_init__(self) -> None:
        if not 0 < self.pooled <= self.window:
            raise ValueError(f"DumbbellConfig: pooled {self.pooled} must be in 1..window ({self.window})")
        for name in ("init_kernel", "refine_kernel"):
            if getattr(self, name) < self.window:
                raise ValueError(f"DumbbellConfig: {name} {getattr(self, name)} is smaller than window {self.window}")
        if self.recover_kernel < self.pooled:
            raise ValueError(f"DumbbellConfig: recover_kernel {self.recover_kernel} is smaller than pooled "
                             f"{self.pooled}")
        if self.pad_mask not in MASK_MODES:
            raise ValueError(f"DumbbellConfig: pad_mask {self.pad_mask!r} is not one of {MASK_MODES}")


def dumbbell_roles(depth: int, unit: Sequence[str] = PAPER_UNIT) -> tuple[str, ...]:
    """``unit`` repeated to cover ``depth`` blocks (``depth`` must be a multiple of its length)."""
    if depth % len(unit):
        raise ValueError(f"dumbbell_roles: depth {depth} is not a multiple of the unit length {len(unit)}")
    return tuple(unit) * (depth // len(unit))


def check_roles(roles: Sequence[str], where: str) -> None:
    """Raise unless ``roles`` is a sequence of whole units: (``image`` | ``init`` [semantic roles] ``recover``)*."""
    unknown = sorted({r for r in roles if r not in ROLES})
    if unknown:
        raise ValueError(f"{where}: unknown roles {unknown}; known roles: {ROLES}")
    semantic = False  # whether semantic tokens exist at this point
    for i, role in enumerate(roles):
        allowed = ("recover", *_SEMANTIC_ROLES) if semantic else ("image", "init")
        if role not in allowed:
            state = "between 'init' and 'recover'" if semantic else "outside a unit (no semantic tokens)"
            raise ValueError(f"{where}: role {role!r} of block {i} is {state}; expected one of {allowed}")
        semantic = role in ("init", *_SEMANTIC_ROLES)
    if semantic:
        raise ValueError(f"{where}: the last unit has no 'recover' block, so its semantic tokens would be lost")


@runtime_checkable
class RoleBlock(Protocol):
    """A pre-norm attention + MLP block offered in parts (``densevit.backbones.vit.Block``, ``SemanticBlock``)."""

    def queries(self, x: Tensor) -> Tensor:
        """Normalised and projected queries: [..., C] -> [..., C]."""
        ...

    def keys_values(self, x: Tensor) -> Tensor:
        """Normalised and projected keys then values: [..., C] -> [..., 2C]."""
        ...

    def queries_keys_values(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``queries`` and ``keys_values`` of the same tokens, normalised once: [..., C] -> ([..., C], [..., 2C])."""
        ...

    def attend(
        self, q: Tensor, kv: Tensor, q_hw: tuple[int, int], k_hw: tuple[int, int], mask: Tensor | None = None
    ) -> Tensor:
        """q [B, G, Lq, C] attend to kv [B, G, Lk, 2C] group by group -> projected output [B, G, Lq, C]."""
        ...

    def attention_residual(self, x: Tensor, out: Tensor) -> Tensor:
        """x plus the attention branch's output ``out`` (layer scale, drop path)."""
        ...

    def mlp_residual(self, x: Tensor) -> Tensor:
        """x plus the MLP branch."""
        ...


# --- roles: one block in one role ---------------------------------------------------------------------------------


def _padded_keys_values(block: RoleBlock, tokens: Tensor, pad: tuple[int, int, int, int]) -> Tensor:
    """Normalise and project keys/values once per token, then pad with the projection of a zero token.

    tokens: [B, H, W, C], pad: (top, bottom, left, right) -> [B, top + H + bottom, left + W + right, 2C].
    """
    kv = block.keys_values(tokens)
    fill = block.keys_values(tokens.new_zeros(tokens.shape[-1]))  # what a zero-padded token becomes
    return pad_grid(kv, *pad, value=fill)


def _cached(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A cache of per-size masks and indexes (the 64 newest) that stores nothing while torch.export / torch.compile
    trace: tensors made during tracing are not real tensors, and a cached one would break every later eager call.
    Real tensors cached before tracing are used as constants by the trace."""
    cache: dict[tuple, Any] = {}

    @wraps(fn)
    def call(*args: Any) -> Any:
        if args in cache:
            return cache[args]
        value = fn(*args)
        if not (torch.compiler.is_compiling() or torch.compiler.is_exporting()):
            if len(cache) >= 64:
                cache.pop(next(iter(cache)))
            cache[args] = value
        return value

    call.cache_clear = cache.clear  # type: ignore[attr-defined]
    return call


@_cached
def _region_mask(
    cfg: DumbbellConfig, hw: tuple[int, int], kernel: int, semantic_keys: bool, device: torch.device,
    dtype: torch.dtype,
) -> Tensor | None:
    """``padding_mask`` of the regions of an image-token grid of size ``hw``: [nh, nw, 1, 1, k * k] or None.

    Keys are the image tokens (``init`` / ``refine``) or the semantic tokens (``recover``, ``semantic_keys``).
    Cached per size, device and dtype; built outside inference mode so that training may use it too.
    """
    h, w = hw
    win, p = cfg.window, cfg.pooled
    nh, nw = -(-h // win), -(-w // win)
    with torch.inference_mode(False), torch.no_grad():
        if semantic_keys:
            valid = (pooled_rows_valid(h, win, p, nh, device), pooled_rows_valid(w, win, p, nw, device))
            grid, stride = (nh * p, nw * p), p
        else:
            valid = (torch.arange(nh * win, device=device) < h, torch.arange(nw * win, device=device) < w)
            grid, stride = (nh * win, nw * win), win
        mask = padding_mask(cfg.pad_mask, grid, valid, (nh * win - h, nw * win - w), kernel, stride)
        return None if mask is None else mask.to(dtype).unflatten(0, (nh, nw))


@_cached
def _column_region_index(
    grid: tuple[int, int], windows: tuple[int, int], kernel: int, stride: int, device: torch.device
) -> Tensor:
    """Flat indexes into a [H, W] key grid of each column's regions: long [nw, nh * kernel * kernel], row-major."""
    (_, w), (nh, nw) = grid, windows
    with torch.inference_mode(False):
        rows = torch.arange(nh, device=device)[:, None, None] * stride + torch.arange(kernel, device=device)[:, None]
        first = (rows * w + torch.arange(kernel, device=device)).flatten()  # column 0
        return first + torch.arange(nw, device=device)[:, None] * stride


def _attend_regions(
    block: RoleBlock, q: Tensor, kv: Tensor, q_hw: tuple[int, int], kernel: int, stride: int, mask: Tensor | None
) -> Tensor:
    """Each window's queries attend to the ``kernel x kernel`` region of ``kv`` at its position.

    q: [B, nh, nw, Lq, C], kv: [B, (nh - 1) * stride + kernel, (nw - 1) * stride + kernel, 2C] (padded),
    mask: [nh, nw, 1, 1, k * k] or None -> projected [B, nh, nw, Lq, C]. One column of windows at a time, where
    gathering every region at once would copy each key (kernel / stride)^2 times into one large, freshly allocated
    tensor. Without autograd the column's strip of ``kv`` is copied once and its regions are views of it
    (``gather_regions``); with autograd they are gathered by index, since ``index_select``'s backward (an
    ``index_add``) is far cheaper than that of overlapping ``unfold`` views. Columns are taken with ``unbind``,
    whose backward stacks the gradients in one operation.
    """
    b, hk, wk, d = kv.shape
    nh, nw = q.shape[1:3]
    masks = mask.unbind(1) if mask is not None else [None] * nw
    if kv.requires_grad:
        flat = kv.reshape(b, hk * wk, d)
        index = _column_region_index((hk, wk), (nh, nw), kernel, stride, kv.device)
        regions = [flat.index_select(1, i).view(b, nh, kernel * kernel, d) for i in index]
    else:
        strips = kv.unfold(2, kernel, stride).unbind(2)  # nw views [B, Hk, 2C, kernel]
        regions = [gather_regions(strip.transpose(2, 3).contiguous(), kernel, stride) for strip in strips]
    outs = [block.attend(q_col, keys, q_hw, (kernel, kernel), mask_col)
            for q_col, keys, mask_col in zip(q.unbind(2), regions, masks, strict=True)]
    return torch.stack(outs, 2)


def semantic_cross_attention(block: RoleBlock, x: Tensor, s: Tensor, kernel: int, cfg: DumbbellConfig) -> Tensor:
    """``init`` / ``refine``: semantic tokens attend to the image tokens of a region around their window.

    x: [B, H, W, C] image tokens, s: [B, nh * p, nw * p, C] semantic tokens (nh = ceil(H / window)) -> new s.
    """
    h, w = x.shape[1:3]
    win, p = cfg.window, cfg.pooled
    nh, nw = -(-h // win), -(-w // win)
    if s.shape[1:3] != (nh * p, nw * p):
        raise ValueError(f"semantic tokens {tuple(s.shape[1:3])} do not match {nh}x{nw} windows of {p}x{p}")
    before, after = region_padding(win, kernel)
    kv = _padded_keys_values(block, x, (before, nh * win - h + after, before, nw * win - w + after))
    q = group_windows(block.queries(s), (p, p)).unflatten(1, (nh, nw))  # [B, nh, nw, p*p, C]
    mask = _region_mask(cfg, (h, w), kernel, False, x.device, x.dtype)
    out = _attend_regions(block, q, kv, (p, p), kernel, win, mask).flatten(1, 2)
    out = ungroup_windows(out, (p, p), (nh * p, nw * p))
    return block.mlp_residual(block.attention_residual(s, out))


def semantic_self_attention(block: RoleBlock, s: Tensor, window: int) -> Tensor:
    """``local`` (``window`` = pooled size) / ``global`` (``window`` = 0): attention among semantic tokens.

    s: [B, sh, sw, C] -> [B, sh, sw, C].
    """
    grid = (s.shape[1], s.shape[2])
    size = grid if window == 0 else (window, window)
    q, kv = block.queries_keys_values(s)
    q, kv = group_windows(q, size), group_windows(kv, size)
    out = ungroup_windows(block.attend(q, kv, size, size, None), size, grid)
    return block.mlp_residual(block.attention_residual(s, out))


def recover_image_tokens(block: RoleBlock, x: Tensor, s: Tensor, cfg: DumbbellConfig) -> Tensor:
    """``recover``: each window of image tokens attends to the semantic tokens around its own group.

    x: [B, H, W, C] image tokens (residual stream), s: [B, nh * p, nw * p, C] -> [B, H, W, C].
    """
    h, w = x.shape[1:3]
    win, p, kernel = cfg.window, cfg.pooled, cfg.recover_kernel
    nh, nw = -(-h // win), -(-w // win)
    if s.shape[1:3] != (nh * p, nw * p):
        raise ValueError(f"semantic tokens {tuple(s.shape[1:3])} do not match {nh}x{nw} windows of {p}x{p}")
    q = pad_to_multiple(block.queries(x), win, channels_last=True)
    q = group_windows(q, (win, win)).unflatten(1, (nh, nw))  # [B, nh, nw, win*win, C]
    before, after = region_padding(p, kernel)
    kv = _padded_keys_values(block, s, (before, after, before, after))
    mask = _region_mask(cfg, (h, w), kernel, True, x.device, x.dtype)
    out = _attend_regions(block, q, kv, (win, win), kernel, p, mask).flatten(1, 2)
    out = ungroup_windows(out, (win, win), (nh * win, nw * win))
    return block.mlp_residual(block.attention_residual(x, out[:, :h, :w]))


def apply_role(
    role: str, block: nn.Module, x: Tensor, s: Tensor | None, cfg: DumbbellConfig
) -> tuple[Tensor, Tensor | None]:
    """Run ``block`` in ``role`` on image tokens x [B, H, W, C] and semantic tokens s -> (x, s).

    ``image`` blocks are called as they are (``block(x)``); the other roles need a ``RoleBlock``.
    """
    if role == "image":
        return block(x), s
    if role == "init":
        return x, semantic_cross_attention(block, x, semantic_pool(x, cfg.window, cfg.pooled), cfg.init_kernel, cfg)
    if s is None:
        raise ValueError(f"role {role!r} needs semantic tokens: put an 'init' block before it")
    if role == "refine":
        return x, semantic_cross_attention(block, x, s, cfg.refine_kernel, cfg)
    if role == "local":
        return x, semantic_self_attention(block, s, cfg.pooled)
    if role == "global":
        return x, semantic_self_attention(block, s, 0)
    if role == "recover":
        return recover_image_tokens(block, x, s, cfg), None
    raise ValueError(f"unknown role {role!r}; known roles: {ROLES}")

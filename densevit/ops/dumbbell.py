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
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

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


def _regions_of(block: RoleBlock, tokens: Tensor, pad: tuple[int, int, int, int], kernel: int, stride: int) -> Tensor:
    """Normalise and project keys/values once per token, pad with the projection of a zero token, gather regions.

    tokens: [B, H, W, C], pad: (top, bottom, left, right) -> [B, nW, kernel * kernel, 2C].
    """
    kv = block.keys_values(tokens)
    fill = block.keys_values(tokens.new_zeros(tokens.shape[-1]))  # what a zero-padded token becomes
    return gather_regions(pad_grid(kv, *pad, value=fill), kernel, stride)


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
    pad_b, pad_r = nh * win - h, nw * win - w
    kv = _regions_of(block, x, (before, pad_b + after, before, pad_r + after), kernel, win)  # [B, nW, k*k, 2C]
    q = group_windows(block.queries(s), (p, p))  # [B, nW, p*p, C]
    valid = (torch.arange(nh * win, device=x.device) < h, torch.arange(nw * win, device=x.device) < w)
    mask = padding_mask(cfg.pad_mask, (nh * win, nw * win), valid, (pad_b, pad_r), kernel, win)
    out = ungroup_windows(block.attend(q, kv, (p, p), (kernel, kernel), mask), (p, p), (nh * p, nw * p))
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
    pad_b, pad_r = nh * win - h, nw * win - w
    q = group_windows(pad_to_multiple(block.queries(x), win, channels_last=True), (win, win))  # [B, nW, win*win, C]
    before, after = region_padding(p, kernel)
    kv = _regions_of(block, s, (before, after, before, after), kernel, p)  # [B, nW, K*K, 2C]
    valid = (pooled_rows_valid(h, win, p, nh, x.device), pooled_rows_valid(w, win, p, nw, x.device))
    mask = padding_mask(cfg.pad_mask, (nh * p, nw * p), valid, (pad_b, pad_r), kernel, p)
    out = ungroup_windows(block.attend(q, kv, (win, win), (kernel, kernel), mask), (win, win), (nh * win, nw * win))
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

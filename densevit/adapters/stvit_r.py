"""STViT-R (Chang et al., CVPR 2023): run the middle blocks on a few semantic tokens, then recover the full map.

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
(``densevit.backbones.swin_stvit_r``). ``STViTR`` applies the same units to a plain ViT, every role reusing
the pretrained weights of the block it replaces (its ``qkv`` is split into the query and key/value parts).

Keys and values are normalised and projected once per token on the dense map, and only then gathered into the
overlapping regions (the released code projects every gathered copy: 4x, 9x and 81x the work for the 14, 21
and 27 regions). A zero-padded token is normalised and projected like any other, so the padding is filled with
``kv(norm1(0))`` and the outputs are identical.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from timm.layers import DropPath, Mlp
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from densevit.adapters.stvit_r_ops import (
    MASK_MODES,
    gather_regions,
    group_windows,
    pad_grid,
    padding_mask,
    pooled_rows_valid,
    region_attention,
    region_padding,
    semantic_pool,
    ungroup_windows,
)
from densevit.backbones.interface import ShapeSpec
from densevit.backbones.vit_utils import decomposed_rel_pos_bias, window_partition, window_unpartition

__all__ = [
    "PAPER_UNIT",
    "ROLES",
    "DumbbellConfig",
    "STViTR",
    "SemanticAttention",
    "SemanticBlock",
    "apply_role",
    "check_roles",
    "dumbbell_roles",
    "middle_dumbbell_roles",
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
    """Geometry of the dumbbell units (sizes in tokens) and how padded keys are masked (``stvit_r_ops``)."""

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


def middle_dumbbell_roles(depth: int, early: int = 3, late: int = 3) -> tuple[str, ...]:
    """One unit between image blocks: ``early`` x image, init, local / global alternating, recover, ``late`` x image.

    With depth 12 and the defaults, blocks 3-8 form the unit: the plain-ViT default (-35% FLOPs on ViTDet-B).
    """
    middle = depth - early - late - 2
    if early < 0 or late < 0 or middle < 0:
        raise ValueError(f"middle_dumbbell_roles: depth {depth} cannot hold {early} early and {late} late image "
                         "blocks plus 'init' and 'recover'")
    semantic = tuple("local" if i % 2 == 0 else "global" for i in range(middle))
    return ("image",) * early + ("init", *semantic, "recover") + ("image",) * late


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


# --- blocks ---------------------------------------------------------------------------------------------------


class SemanticAttention(nn.Module):
    """Attention with separate query and key/value projections (``q``, ``kv``) and an output ``proj``."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"SemanticAttention: dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv = nn.Linear(dim, 2 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)


class SemanticBlock(nn.Module):
    """Pre-norm block with layer scale whose attention runs in a dumbbell role (the new STViT-R-Swin blocks).

    Parameter names follow the released checkpoints: ``norm1, attn.{q,kv,proj}, layer_scale_1, norm2,
    mlp.{fc1,fc2}, layer_scale_2``. It has no forward of its own: ``apply_role`` runs it.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop_path: float = 0.0,
        norm_layer: Callable[[int], nn.Module] = nn.LayerNorm,
        act_layer: type[nn.Module] = nn.GELU,
        layer_scale_init: float = 1e-5,
    ) -> None:
        super().__init__()
        self.norm1 = norm_layer(dim)
        self.attn = SemanticAttention(dim, num_heads, qkv_bias)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=act_layer)
        self.layer_scale_1 = nn.Parameter(torch.full((dim,), layer_scale_init))
        self.layer_scale_2 = nn.Parameter(torch.full((dim,), layer_scale_init))

    def ls1(self, x: Tensor) -> Tensor:
        """Scale the attention branch (named like the ViT block's ``ls1`` module)."""
        return x * self.layer_scale_1

    def ls2(self, x: Tensor) -> Tensor:
        """Scale the MLP branch."""
        return x * self.layer_scale_2


# --- roles: one block (a ViT ``Block`` or a ``SemanticBlock``) in one role ---------------------------------------
# A block provides norm1, attn (with num_heads, proj and either q/kv or a fused qkv), ls1, drop_path, norm2, mlp, ls2.


def _project_q(block: nn.Module, x: Tensor) -> Tensor:
    """Queries: [..., C] -> [..., C]; a fused ``qkv`` (pretrained ViT block) contributes its first third."""
    attn = block.attn
    if isinstance(attn, SemanticAttention):
        return attn.q(x)
    c = x.shape[-1]
    bias = attn.qkv.bias
    return F.linear(x, attn.qkv.weight[:c], None if bias is None else bias[:c])


def _project_kv(block: nn.Module, x: Tensor) -> Tensor:
    """Keys and values: [..., C] -> [..., 2C] (keys first)."""
    attn = block.attn
    if isinstance(attn, SemanticAttention):
        return attn.kv(x)
    c = x.shape[-1]
    bias = attn.qkv.bias
    return F.linear(x, attn.qkv.weight[c:], None if bias is None else bias[c:])


def _attend(
    block: nn.Module, q: Tensor, q_hw: tuple[int, int], kv: Tensor, k_hw: tuple[int, int], mask: Tensor | None
) -> Tensor:
    """q: [B, nW, q_h * q_w, C], kv: [B, nW, k_h * k_w, 2C] -> projected attention output [B, nW, q_h * q_w, C].

    A ViT block with decomposed relative positions keeps them: MViTv2's form relates query and key grids of
    different sizes, so every parameter of the reused block stays in use.
    """
    attn = block.attn
    bias = mask
    if getattr(attn, "use_rel_pos", False):
        b, nw, lq, c = q.shape
        heads_q = q.view(b, nw, lq, attn.num_heads, c // attn.num_heads).transpose(2, 3)
        rel = decomposed_rel_pos_bias(heads_q, attn.rel_pos_h, attn.rel_pos_w, q_hw, k_hw)  # [B, nW, h, Lq, Lk]
        bias = rel if bias is None else rel + bias
    return attn.proj(region_attention(q, kv, attn.num_heads, bias))


def _mlp_residual(block: nn.Module, x: Tensor) -> Tensor:
    return x + block.drop_path(block.ls2(block.mlp(block.norm2(x))))


def _regions_of(block: nn.Module, tokens: Tensor, pad: tuple[int, int, int, int], kernel: int, stride: int) -> Tensor:
    """Normalise and project keys/values once per token, pad with the projection of a zero token, gather regions.

    tokens: [B, H, W, C], pad: (top, bottom, left, right) -> [B, nW, kernel * kernel, 2C].
    """
    kv = _project_kv(block, block.norm1(tokens))
    fill = _project_kv(block, block.norm1(tokens.new_zeros(tokens.shape[-1])))  # what a zero-padded token becomes
    return gather_regions(pad_grid(kv, *pad, value=fill), kernel, stride)


def semantic_cross_attention(block: nn.Module, x: Tensor, s: Tensor, kernel: int, cfg: DumbbellConfig) -> Tensor:
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
    q = group_windows(_project_q(block, block.norm1(s)), (p, p))  # [B, nW, p*p, C]
    valid = (torch.arange(nh * win, device=x.device) < h, torch.arange(nw * win, device=x.device) < w)
    mask = padding_mask(cfg.pad_mask, (nh * win, nw * win), valid, (pad_b, pad_r), kernel, win)
    out = ungroup_windows(_attend(block, q, (p, p), kv, (kernel, kernel), mask), (p, p), (nh * p, nw * p))
    s = s + block.drop_path(block.ls1(out))
    return _mlp_residual(block, s)


def semantic_self_attention(block: nn.Module, s: Tensor, window: int) -> Tensor:
    """``local`` (``window`` = pooled size) / ``global`` (``window`` = 0): attention among semantic tokens.

    s: [B, sh, sw, C] -> [B, sh, sw, C].
    """
    grid = (s.shape[1], s.shape[2])
    size = grid if window == 0 else (window, window)
    y = block.norm1(s)
    q = group_windows(_project_q(block, y), size)
    kv = group_windows(_project_kv(block, y), size)
    out = ungroup_windows(_attend(block, q, size, kv, size, None), size, grid)
    s = s + block.drop_path(block.ls1(out))
    return _mlp_residual(block, s)


def recover_image_tokens(block: nn.Module, x: Tensor, s: Tensor, cfg: DumbbellConfig) -> Tensor:
    """``recover``: each window of image tokens attends to the semantic tokens around its own group.

    x: [B, H, W, C] image tokens (residual stream), s: [B, nh * p, nw * p, C] -> [B, H, W, C].
    """
    b, h, w, c = x.shape
    win, p, kernel = cfg.window, cfg.pooled, cfg.recover_kernel
    q_windows, pad_hw = window_partition(_project_q(block, block.norm1(x)), win)  # [B * nW, win, win, C]
    nh, nw = pad_hw[0] // win, pad_hw[1] // win
    if s.shape[1:3] != (nh * p, nw * p):
        raise ValueError(f"semantic tokens {tuple(s.shape[1:3])} do not match {nh}x{nw} windows of {p}x{p}")
    before, after = region_padding(p, kernel)
    kv = _regions_of(block, s, (before, after, before, after), kernel, p)  # [B, nW, K*K, 2C]
    valid = (pooled_rows_valid(h, win, p, nh, x.device), pooled_rows_valid(w, win, p, nw, x.device))
    mask = padding_mask(cfg.pad_mask, (nh * p, nw * p), valid, (pad_hw[0] - h, pad_hw[1] - w), kernel, p)
    q = q_windows.reshape(b, nh * nw, win * win, c)
    out = _attend(block, q, (win, win), kv, (kernel, kernel), mask)
    out = window_unpartition(out.reshape(b * nh * nw, win, win, c), win, pad_hw, (h, w))
    x = x + block.drop_path(block.ls1(out))
    return _mlp_residual(block, x)


def apply_role(
    role: str, block: nn.Module, x: Tensor, s: Tensor | None, cfg: DumbbellConfig
) -> tuple[Tensor, Tensor | None]:
    """Run ``block`` in ``role`` on image tokens x [B, H, W, C] and semantic tokens s -> (x, s).

    ``image`` blocks are called as they are (``block(x)``); the other roles use the block's parts.
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


# --- the plain-ViT adapter ------------------------------------------------------------------------------------


class STViTR(nn.Module):
    """STViT-R on a plain ViT: its blocks play the roles in ``roles``; output NCHW maps at stride ``patch_size``.

    ``vit`` is a built ``densevit.backbones.vit.ViT`` (pretrained weights already loaded). ``roles`` gives one role
    per block (default: ``middle_dumbbell_roles(depth)``, -35% FLOPs on ViTDet-B at 1024). ``out_indices`` must
    name blocks that leave image tokens (``image`` / ``recover``); with the single default output the adapter
    fits ``SimpleFeaturePyramid``. Padded keys are masked exactly by default (``pad_mask="valid"``).
    """

    def __init__(
        self,
        vit: nn.Module,
        *,
        roles: Sequence[str] | None = None,
        window: int = 7,
        pooled: int = 3,
        init_kernel: int = 14,
        refine_kernel: int = 21,
        recover_kernel: int = 27,
        pad_mask: str = "valid",
        out_indices: Sequence[int] = (-1,),
    ) -> None:
        super().__init__()
        missing = [a for a in ("embed", "blocks", "embed_dim", "patch_size", "depth") if not hasattr(vit, a)]
        if missing:
            raise ValueError(f"STViTR needs a densevit ViT (embed, blocks, embed_dim, patch_size, depth); "
                             f"{type(vit).__name__} lacks {missing}")
        no_qkv = [i for i, blk in enumerate(vit.blocks) if not hasattr(getattr(blk, "attn", None), "qkv")]
        if no_qkv:
            raise ValueError(f"STViTR: blocks {no_qkv} of {type(vit).__name__} have no attn.qkv projection")
        depth = vit.depth
        roles = tuple(roles) if roles is not None else middle_dumbbell_roles(depth)
        if len(roles) != depth:
            raise ValueError(f"STViTR: {len(roles)} roles given for a ViT of depth {depth}")
        check_roles(roles, "STViTR")
        outs = tuple(i + depth if i < 0 else i for i in out_indices)
        bad = [i for i in outs if not 0 <= i < depth or roles[i] not in ("image", "recover")]
        if not outs or bad or list(outs) != sorted(set(outs)):
            raise ValueError(f"STViTR: out_indices {tuple(out_indices)} must be increasing blocks whose role is "
                             f"'image' or 'recover' (roles: {roles})")
        self.vit = vit
        self.roles = roles
        self.cfg = DumbbellConfig(window, pooled, init_kernel, refine_kernel, recover_kernel, pad_mask)
        self.out_indices = outs
        self.output_shapes = (ShapeSpec(vit.embed_dim, vit.patch_size),) * len(outs)

    def forward(self, x: Tensor) -> list[Tensor]:
        """x: [B, 3, H, W] -> one [B, C, ceil(H / p), ceil(W / p)] map per entry of ``out_indices``."""
        x = self.vit.embed(x)
        s = None
        outs = []
        for i, (block, role) in enumerate(zip(self.vit.blocks, self.roles, strict=True)):
            step = partial(apply_role, role, block, cfg=self.cfg)
            if getattr(self.vit, "use_act_checkpoint", False) and self.training:
                x, s = checkpoint(step, x, s, use_reentrant=False)
            else:
                x, s = step(x, s)
            if i in self.out_indices:
                outs.append(x.permute(0, 3, 1, 2))
        return outs

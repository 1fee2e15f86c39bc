"""Plain Vision Transformer backbone (timm parameter names, ViTDet window / relative-position options).

Tokens stay a [B, h, w, C] grid from the patch embedding to the last block: there is no class token and no
final norm. ``ViT.embed`` and ``ViT.blocks[i]`` are public so that adapters (ViT-CoMer, STViT-R) can
interleave their own modules with the blocks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from timm.layers import DropPath, LayerScale, Mlp
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from densevit.backbones.interface import ShapeSpec
from densevit.backbones.vit_utils import (
    decomposed_rel_pos_bias,
    resize_abs_pos,
    window_partition,
    window_unpartition,
)
from densevit.ops.attention import grouped_attention
from densevit.ops.resize import pad_to_multiple

# Pre-norm LayerNorm of timm / ViTDet ViTs.
LAYER_NORM = partial(nn.LayerNorm, eps=1e-6)

__all__ = ["VITDET_GLOBAL_BLOCKS", "VITDET_SIZES", "VIT_SIZES", "Attention", "Block", "PatchEmbed", "ViT"]


class Attention(nn.Module):
    """Multi-head self-attention over a token grid, with optional decomposed relative positions.

    Besides ``forward`` it offers its parts to adapters that run it on other token sets (STViT-R): ``project_q``,
    ``project_kv`` (the thirds of the fused ``qkv``) and ``attend`` (attention of query groups to key groups).
    """

    def __init__(
        self,
        dim: int,
        num_heads: int = 8,
        qkv_bias: bool = True,
        use_rel_pos: bool = False,
        rel_pos_size: int = 0,
        fused_attn: bool = True,
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"Attention: dim {dim} is not divisible by num_heads {num_heads}")
        if use_rel_pos and rel_pos_size < 1:
            raise ValueError(f"Attention: use_rel_pos needs rel_pos_size >= 1, found {rel_pos_size}")
        self.dim = dim
        self.num_heads = num_heads
        head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.use_rel_pos = use_rel_pos
        if use_rel_pos:
            # Zero init: the block starts as plain attention (ViTDet default).
            self.rel_pos_h = nn.Parameter(torch.zeros(2 * rel_pos_size - 1, head_dim))
            self.rel_pos_w = nn.Parameter(torch.zeros(2 * rel_pos_size - 1, head_dim))
        # F.scaled_dot_product_attention when True, the explicit softmax(q k^T) otherwise (same numbers).
        self.fused_attn = fused_attn

    def forward(self, x: Tensor, window_size: int = 0, zero_pad_qkv: bool = False) -> Tensor:
        """x: [B, H, W, C] -> [B, H, W, C]; within ``window_size`` windows when it is > 0.

        A grid that is not a multiple of the window is zero-padded bottom/right. As in ViTDet the padding is
        added to the tokens, so padded keys and values are the projection biases; with ``zero_pad_qkv`` (as in
        ViT-CoMer) it is added to q, k and v after the projection, so padded keys get logit 0 and value 0.
        Neither masks the padded keys.
        """
        if window_size <= 0:
            return self.proj(self._attend_qkv(self.qkv(x)))
        hw = (x.shape[1], x.shape[2])
        if zero_pad_qkv and (hw[0] % window_size or hw[1] % window_size):
            windows, pad_hw = window_partition(self.qkv(x), window_size)  # [B * nW, ws, ws, 3C]
            return self.proj(window_unpartition(self._attend_qkv(windows), window_size, pad_hw, hw))
        windows, pad_hw = window_partition(x, window_size)  # [B * nW, ws, ws, C]
        return window_unpartition(self.proj(self._attend_qkv(self.qkv(windows))), window_size, pad_hw, hw)

    def project_q(self, x: Tensor) -> Tensor:
        """Queries alone (the first third of ``qkv``): [..., C] -> [..., C]."""
        bias = self.qkv.bias
        return F.linear(x, self.qkv.weight[: self.dim], None if bias is None else bias[: self.dim])

    def project_kv(self, x: Tensor) -> Tensor:
        """Keys then values (the last two thirds of ``qkv``): [..., C] -> [..., 2C]."""
        bias = self.qkv.bias
        return F.linear(x, self.qkv.weight[self.dim :], None if bias is None else bias[self.dim :])

    def attend(
        self, q: Tensor, kv: Tensor, q_hw: tuple[int, int], k_hw: tuple[int, int], mask: Tensor | None = None
    ) -> Tensor:
        """Each group's queries attend to its keys/values, then the output projection.

        q: [B, G, q_h * q_w, C], kv: [B, G, k_h * k_w, 2C] (``project_q`` / ``project_kv`` outputs), mask: additive
        logits broadcastable to [B, G, heads, Lq, Lk] -> [B, G, Lq, C]. Relative positions take MViTv2's form, which
        relates query and key grids of different sizes.
        """
        return self.proj(self._attend(q, kv, q_hw, k_hw, mask))

    def _attend_qkv(self, qkv: Tensor) -> Tensor:
        """Self-attention of fused projections over each grid: qkv [B, h, w, 3C] -> [B, h, w, C] (not projected)."""
        b, h, w, _ = qkv.shape
        qkv = qkv.reshape(b, 1, h * w, -1)
        out = self._attend(qkv[..., : self.dim], qkv[..., self.dim :], (h, w), (h, w), None)
        return out.reshape(b, h, w, self.dim)

    def _attend(
        self, q: Tensor, kv: Tensor, q_hw: tuple[int, int], k_hw: tuple[int, int], mask: Tensor | None
    ) -> Tensor:
        bias = mask
        if self.use_rel_pos:
            heads_q = q.unflatten(-1, (self.num_heads, -1)).transpose(-3, -2)  # [B, G, heads, Lq, hd]
            rel = decomposed_rel_pos_bias(heads_q, self.rel_pos_h, self.rel_pos_w, q_hw, k_hw)  # [B, G, heads, Lq, Lk]
            # The mask is added into the fresh bias in place: a second tensor of the bias's size (17 MB per column
            # of a ViTDet-B recovery block at 1024) would be allocated and written for nothing.
            bias = rel if mask is None else rel.add_(mask)
        return grouped_attention(q, kv, self.num_heads, bias, fused=self.fused_attn)


class Block(nn.Module):
    """Pre-norm transformer block on a [B, H, W, C] grid; windowed attention when ``window_size > 0``.

    Adapters that run the block on other token sets (STViT-R's roles) use its parts: ``queries``,
    ``keys_values``, ``queries_keys_values`` (normalised and projected tokens), ``attend``,
    ``attention_residual`` and ``mlp_residual``.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop_path: float = 0.0,
        norm_layer: Callable[[int], nn.Module] = LAYER_NORM,
        act_layer: type[nn.Module] = nn.GELU,
        window_size: int = 0,
        use_rel_pos: bool = False,
        rel_pos_size: int = 0,
        layer_scale_init: float | None = None,
    ) -> None:
        super().__init__()
        self.window_size = window_size
        self.norm1 = norm_layer(dim)
        self.attn = Attention(dim, num_heads, qkv_bias, use_rel_pos=use_rel_pos, rel_pos_size=rel_pos_size)
        self.ls1 = LayerScale(dim, layer_scale_init) if layer_scale_init is not None else nn.Identity()
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=act_layer)
        self.ls2 = LayerScale(dim, layer_scale_init) if layer_scale_init is not None else nn.Identity()
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: Tensor, zero_pad_qkv: bool = False) -> Tensor:
        """x: [B, H, W, C] -> [B, H, W, C]; ``zero_pad_qkv``: how windows pad, see ``Attention.forward``."""
        x = self.attention_residual(x, self.attn(self.norm1(x), self.window_size, zero_pad_qkv))
        return self.mlp_residual(x)

    def queries(self, x: Tensor) -> Tensor:
        """Normalised and projected queries: [..., C] -> [..., C]."""
        return self.attn.project_q(self.norm1(x))

    def keys_values(self, x: Tensor) -> Tensor:
        """Normalised and projected keys then values: [..., C] -> [..., 2C]."""
        return self.attn.project_kv(self.norm1(x))

    def queries_keys_values(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``queries`` and ``keys_values`` of the same tokens, normalised once: [..., C] -> ([..., C], [..., 2C])."""
        y = self.norm1(x)
        return self.attn.project_q(y), self.attn.project_kv(y)

    def attend(
        self, q: Tensor, kv: Tensor, q_hw: tuple[int, int], k_hw: tuple[int, int], mask: Tensor | None = None
    ) -> Tensor:
        """``Attention.attend``: q [B, G, Lq, C], kv [B, G, Lk, 2C] -> projected output [B, G, Lq, C]."""
        return self.attn.attend(q, kv, q_hw, k_hw, mask)

    def attention_residual(self, x: Tensor, out: Tensor) -> Tensor:
        """The residual stream x plus the (layer-scaled, drop-path) attention output of the same shape."""
        return x + self.drop_path(self.ls1(out))

    def mlp_residual(self, x: Tensor) -> Tensor:
        """x plus the MLP branch: [..., C] -> [..., C]."""
        return x + self.drop_path(self.ls2(self.mlp(self.norm2(x))))


class PatchEmbed(nn.Module):
    """Patch projection to a token grid; the image is zero-padded bottom/right to a multiple of the patch."""

    def __init__(self, patch_size: int = 16, in_chans: int = 3, embed_dim: int = 768) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: Tensor) -> Tensor:
        """x: [B, 3, H, W] -> [B, ceil(H / p), ceil(W / p), C]."""
        return self.proj(pad_to_multiple(x, self.patch_size)).permute(0, 2, 3, 1)


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


class ViT(nn.Module):
    """Plain ViT backbone returning NCHW stride-``patch_size`` maps after the blocks in ``out_indices``.

    ``pretrain_img_size`` (default ``img_size``) sizes the absolute position table, ``img_size`` the
    relative-position tables of global blocks; ViTDet uses 224 and 1024. Any input size works: the image is
    zero-padded bottom/right to a multiple of the patch and the position grid is resized to the token grid.
    Pretrained weights load after construction: ``densevit.checkpoint.load_weights(vit, path)`` (timm, DeiT,
    MAE or DINOv2 files by default), or a config's ``pretrained``.
    """

    # Layout that ``densevit.checkpoint.load_weights`` assumes for a file given without a converter.
    default_converter: ClassVar[str] = "timm"

    def __init__(
        self,
        *,
        img_size: int = 224,
        patch_size: int = 16,
        in_chans: int = 3,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop_path_rate: float = 0.0,
        norm_layer: Callable[[int], nn.Module] = LAYER_NORM,
        act_layer: type[nn.Module] = nn.GELU,
        window_size: int = 0,
        window_block_indexes: Sequence[int] = (),
        use_rel_pos: bool = False,
        layer_scale_init: float | None = None,
        use_act_checkpoint: bool = False,
        out_indices: Sequence[int] = (-1,),
        pretrain_img_size: int | None = None,
    ) -> None:
        super().__init__()
        pretrain_img_size = pretrain_img_size or img_size
        for name, size in (("img_size", img_size), ("pretrain_img_size", pretrain_img_size)):
            if size % patch_size:
                raise ValueError(f"ViT: {name} {size} is not a multiple of patch_size {patch_size}")
        bad_windows = [i for i in window_block_indexes if not 0 <= i < depth]
        if bad_windows:
            raise ValueError(f"ViT: window_block_indexes {bad_windows} are outside 0..{depth - 1}")
        if window_block_indexes and window_size <= 0:
            raise ValueError(f"ViT: window_block_indexes {tuple(window_block_indexes)} need window_size > 0")
        outs = tuple(i + depth if i < 0 else i for i in out_indices)
        if not outs or any(not 0 <= i < depth for i in outs) or list(outs) != sorted(set(outs)):
            raise ValueError(f"ViT: out_indices {tuple(out_indices)} must be increasing block indexes in "
                             f"-{depth}..{depth - 1}")
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.patch_size = patch_size
        self.depth = depth
        self.out_indices = outs
        self.output_shapes = (ShapeSpec(embed_dim, patch_size),) * len(outs)
        self.use_act_checkpoint = use_act_checkpoint

        self.patch_embed = PatchEmbed(patch_size, in_chans, embed_dim)
        num_positions = (pretrain_img_size // patch_size) ** 2
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + num_positions, embed_dim))  # slot 0: class token
        grid = img_size // patch_size
        self.blocks = nn.ModuleList(
            Block(
                embed_dim,
                num_heads,
                mlp_ratio=mlp_ratio,
                qkv_bias=qkv_bias,
                drop_path=drop_path_rate * i / max(depth - 1, 1),
                norm_layer=norm_layer,
                act_layer=act_layer,
                window_size=window_size if i in window_block_indexes else 0,
                use_rel_pos=use_rel_pos,
                rel_pos_size=window_size if i in window_block_indexes else grid,
                layer_scale_init=layer_scale_init,
            )
            for i in range(depth)
        )
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.apply(_init_weights)

    def embed(self, x: Tensor) -> Tensor:
        """Patch embedding plus resized absolute positions: x [B, 3, H, W] -> [B, h, w, C]."""
        return self.add_positions(self.patch_embed(x))

    def add_positions(self, x: Tensor) -> Tensor:
        """Tokens [B, h, w, C] plus the absolute position table resized to the h x w grid."""
        return x + resize_abs_pos(self.pos_embed, (x.shape[1], x.shape[2]))

    def forward(self, x: Tensor) -> list[Tensor]:
        """x: [B, 3, H, W] -> one [B, C, ceil(H / p), ceil(W / p)] map per entry of ``out_indices``."""
        return self.forward_blocks(self.embed(x))

    def forward_blocks(self, x: Tensor) -> list[Tensor]:
        """Embedded tokens [B, h, w, C] through every block -> the ``out_indices`` maps, each [B, C, h, w]."""
        outs = []
        use_checkpoint = self.use_act_checkpoint and self.training
        for i, block in enumerate(self.blocks):
            x = checkpoint(block, x, use_reentrant=False) if use_checkpoint else block(x)
            if i in self.out_indices:
                outs.append(x.permute(0, 3, 1, 2))
        return outs

    def no_weight_decay(self) -> set[str]:
        """Names of the position parameters (absolute and relative) that take no weight decay."""
        return {name for name, _ in self.named_parameters() if name == "pos_embed" or "rel_pos_" in name}

    def layer_id(self, param_name: str) -> int:
        """Depth of a parameter (name relative to the ViT) for layer-wise lr decay: 0 embed, i + 1 block i."""
        if param_name.startswith(("patch_embed.", "pos_embed")):
            return 0
        if param_name.startswith("blocks."):
            return int(param_name.split(".")[1]) + 1
        return self.depth + 1


# --- sizes ------------------------------------------------------------------------------------------------

VIT_SIZES: dict[str, dict[str, int]] = {
    "tiny": dict(embed_dim=192, depth=12, num_heads=3),
    "small": dict(embed_dim=384, depth=12, num_heads=6),
    "base": dict(embed_dim=768, depth=12, num_heads=12),
    "large": dict(embed_dim=1024, depth=24, num_heads=16),
    "huge": dict(embed_dim=1280, depth=32, num_heads=16),
}

# Blocks with global attention in ViTDet; all other blocks use 14x14 windows.
VITDET_GLOBAL_BLOCKS: dict[str, tuple[int, ...]] = {
    "base": (2, 5, 8, 11),
    "large": (5, 11, 17, 23),
    "huge": (7, 15, 23, 31),
}


def _vitdet(size: str, drop_path_rate: float) -> dict[str, Any]:
    depth = VIT_SIZES[size]["depth"]
    windowed = tuple(i for i in range(depth) if i not in VITDET_GLOBAL_BLOCKS[size])
    return dict(
        VIT_SIZES[size],
        img_size=1024,
        pretrain_img_size=224,
        drop_path_rate=drop_path_rate,
        window_size=14,
        window_block_indexes=windowed,
        use_rel_pos=True,
    )


# ``ViT(**VITDET_SIZES["base"])`` is the ViTDet-B backbone (85.9M parameters).
VITDET_SIZES: dict[str, dict[str, Any]] = {
    "base": _vitdet("base", 0.1),
    "large": _vitdet("large", 0.4),
    "huge": _vitdet("huge", 0.5),
}

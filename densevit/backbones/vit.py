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
    add_decomposed_rel_pos,
    decomposed_rel_pos_bias,
    pad_to_multiple,
    resize_abs_pos,
    window_partition,
    window_unpartition,
)

# Pre-norm LayerNorm of timm / ViTDet ViTs.
LAYER_NORM = partial(nn.LayerNorm, eps=1e-6)

__all__ = ["VITDET_GLOBAL_BLOCKS", "VITDET_SIZES", "VIT_SIZES", "Attention", "Block", "PatchEmbed", "ViT"]


class Attention(nn.Module):
    """Multi-head self-attention over a token grid, with optional decomposed relative positions."""

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
        self.num_heads = num_heads
        head_dim = dim // num_heads
        self.scale = head_dim**-0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.use_rel_pos = use_rel_pos
        if use_rel_pos:
            # Zero init: the block starts as plain attention (ViTDet default).
            self.rel_pos_h = nn.Parameter(torch.zeros(2 * rel_pos_size - 1, head_dim))
            self.rel_pos_w = nn.Parameter(torch.zeros(2 * rel_pos_size - 1, head_dim))
        # F.scaled_dot_product_attention when True, the explicit softmax(q k^T) otherwise (same numbers).
        self.fused_attn = fused_attn

    def forward(self, x: Tensor) -> Tensor:
        """x: [B, H, W, C] -> [B, H, W, C]."""
        b, h, w, _ = x.shape
        qkv = self.qkv(x).reshape(b, h * w, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # each [B, heads, N, head_dim]
        if self.fused_attn:
            bias = (
                decomposed_rel_pos_bias(q, self.rel_pos_h, self.rel_pos_w, (h, w), (h, w))
                if self.use_rel_pos
                else None
            )
            x = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        else:
            attn = (q * self.scale) @ k.transpose(-2, -1)  # [B, heads, N, N]
            if self.use_rel_pos:
                attn = add_decomposed_rel_pos(attn, q, self.rel_pos_h, self.rel_pos_w, (h, w), (h, w))
            x = attn.softmax(dim=-1) @ v
        x = x.transpose(1, 2).reshape(b, h, w, -1)
        return self.proj(x)


class Block(nn.Module):
    """Pre-norm transformer block on a [B, H, W, C] grid; windowed attention when ``window_size > 0``."""

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

    def forward(self, x: Tensor) -> Tensor:
        """x: [B, H, W, C] -> [B, H, W, C]."""
        shortcut = x
        x = self.norm1(x)
        if self.window_size > 0:
            # Padded tokens are zeros after the norm; as in ViTDet they are not masked out as keys.
            hw = (x.shape[1], x.shape[2])
            windows, pad_hw = window_partition(x, self.window_size)  # [B * nW, ws, ws, C]
            x = window_unpartition(self.attn(windows), self.window_size, pad_hw, hw)
        else:
            x = self.attn(x)
        x = shortcut + self.drop_path(self.ls1(x))
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

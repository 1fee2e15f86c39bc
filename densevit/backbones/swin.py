"""Swin Transformer backbone (Liu et al. 2021) with the key names of the mmdet detection checkpoints.

Keys: ``patch_embed.{proj,norm}``, ``layers.N.blocks.M.{norm1, attn.qkv, attn.proj,
attn.relative_position_bias_table, norm2, mlp.fc1, mlp.fc2}``, ``layers.N.downsample.{reduction,norm}`` and
``norm0..3`` (one LayerNorm per output). Tokens stay a [B, H, W, C] grid; any input size works: windows and
patch merging zero-pad bottom/right as the reference does (padded tokens are not masked as keys).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from timm.layers import DropPath, Mlp
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from densevit.backbones.interface import ShapeSpec
from densevit.backbones.vit_utils import window_partition, window_unpartition
from densevit.ops.resize import pad_to_multiple

__all__ = [
    "SWIN_SIZES",
    "PatchEmbed",
    "PatchMerging",
    "SwinBlock",
    "SwinStage",
    "SwinTransformer",
    "WindowAttention",
    "relative_position_index",
    "shifted_window_mask",
]

# Logit added between tokens of different regions of a shifted window (the reference's value).
SHIFT_MASK_VALUE = -100.0


def relative_position_index(window_size: int) -> Tensor:
    """Index into the (2w - 1)^2 bias table for every (query, key) pair of a window: long [w*w, w*w]."""
    coords = torch.stack(torch.meshgrid(torch.arange(window_size), torch.arange(window_size), indexing="ij"))
    coords = coords.flatten(1)  # [2, w*w]
    rel = coords[:, :, None] - coords[:, None, :] + (window_size - 1)  # [2, w*w, w*w], offsets from 0
    return rel[0] * (2 * window_size - 1) + rel[1]


def shifted_window_mask(padded_hw: tuple[int, int], window_size: int, shift: int, device: torch.device) -> Tensor:
    """Additive mask [nW, w*w, w*w] that keeps a shifted window from mixing tokens rolled in from far edges."""
    hp, wp = padded_hw
    regions = torch.zeros(1, hp, wp, 1, device=device)
    bounds = (slice(0, -window_size), slice(-window_size, -shift), slice(-shift, None))
    for i, (rows, cols) in enumerate((r, c) for r in bounds for c in bounds):
        regions[:, rows, cols] = i
    labels = window_partition(regions, window_size)[0].flatten(1)  # [nW, w*w]
    same = labels[:, None, :] == labels[:, :, None]
    return torch.zeros_like(same, dtype=torch.float32).masked_fill(~same, SHIFT_MASK_VALUE)


class WindowAttention(nn.Module):
    """Multi-head self-attention inside windows with a learned relative position bias per head."""

    def __init__(self, dim: int, window_size: int, num_heads: int, qkv_bias: bool = True) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"WindowAttention: dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.window_size = window_size
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window_size - 1) ** 2, num_heads))
        # Not persistent: derived from window_size (checkpoints that hold it are filtered on load).
        self.register_buffer("relative_position_index", relative_position_index(window_size), persistent=False)
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """x: [B, nW, w*w, C], mask: [nW, w*w, w*w] additive or None -> [B, nW, w*w, C]."""
        b, nw, n, c = x.shape
        # Windows go into the batch axis: 4-D inputs take PyTorch's fused CPU kernel, 5-D ones the slow math path.
        qkv = self.qkv(x).reshape(b * nw, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # each [B*nW, heads, N, hd]
        bias = self.relative_position_bias_table[self.relative_position_index].permute(2, 0, 1)  # [heads, N, N]
        if mask is not None:
            bias = (bias + mask[:, None]).expand(b, -1, -1, -1, -1).reshape(b * nw, -1, n, n)  # [B*nW, heads, N, N]
        x = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype))
        return self.proj(x.transpose(1, 2).reshape(b, nw, n, c))


class SwinBlock(nn.Module):
    """Pre-norm Swin block: (shifted) window attention and an MLP, each with a residual."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        window_size: int = 7,
        shift_size: int = 0,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop_path: float = 0.0,
        norm_layer: Callable[[int], nn.Module] = nn.LayerNorm,
        act_layer: type[nn.Module] = nn.GELU,
    ) -> None:
        super().__init__()
        if not 0 <= shift_size < window_size:
            raise ValueError(f"SwinBlock: shift_size {shift_size} must be in 0..window_size-1 ({window_size - 1})")
        self.window_size = window_size
        self.shift_size = shift_size
        self.norm1 = norm_layer(dim)
        self.attn = WindowAttention(dim, window_size, num_heads, qkv_bias)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=act_layer)

    def forward(self, x: Tensor, attn_mask: Tensor | None = None) -> Tensor:
        """x: [B, H, W, C], attn_mask: ``shifted_window_mask`` of the padded grid (shifted blocks) -> [B, H, W, C]."""
        b, h, w, c = x.shape
        ws, shift = self.window_size, self.shift_size
        shortcut = x
        # Pad after the norm (padded tokens are zeros), then roll, as the reference does.
        x = pad_to_multiple(self.norm1(x), ws, channels_last=True)
        if shift:
            x = torch.roll(x, shifts=(-shift, -shift), dims=(1, 2))
        windows, padded_hw = window_partition(x, ws)  # [B * nW, ws, ws, C], no further padding
        windows = self.attn(windows.reshape(b, -1, ws * ws, c), attn_mask if shift else None)
        x = window_unpartition(windows.reshape(-1, ws, ws, c), ws, padded_hw, padded_hw)
        if shift:
            x = torch.roll(x, shifts=(shift, shift), dims=(1, 2))
        x = shortcut + self.drop_path(x[:, :h, :w])
        return x + self.drop_path(self.mlp(self.norm2(x)))


class PatchMerging(nn.Module):
    """2x2 neighbouring tokens concatenated (zero-padding an odd grid), normalised and projected to 2C."""

    def __init__(self, dim: int, norm_layer: Callable[[int], nn.Module] = nn.LayerNorm) -> None:
        super().__init__()
        self.norm = norm_layer(4 * dim)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        """x: [B, H, W, C] -> [B, ceil(H / 2), ceil(W / 2), 2C]."""
        x = pad_to_multiple(x, 2, channels_last=True)
        # Order (0,0), (1,0), (0,1), (1,1) as in the reference, so its reduction weights apply.
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], dim=-1)
        return self.reduction(self.norm(x))


class PatchEmbed(nn.Module):
    """Patch projection (conv, stride = patch) and LayerNorm; the image is zero-padded to a multiple of the patch."""

    def __init__(
        self, patch_size: int = 4, in_chans: int = 3, embed_dim: int = 96,
        norm_layer: Callable[[int], nn.Module] = nn.LayerNorm,
    ) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)
        self.norm = norm_layer(embed_dim)

    def forward(self, x: Tensor) -> Tensor:
        """x: [B, 3, H, W] -> [B, ceil(H / p), ceil(W / p), C]."""
        return self.norm(self.proj(pad_to_multiple(x, self.patch_size)).permute(0, 2, 3, 1))


class SwinStage(nn.Module):
    """``depth`` Swin blocks (every second one shifted by half a window), then optional patch merging."""

    def __init__(
        self,
        *,
        dim: int,
        depth: int,
        num_heads: int,
        window_size: int = 7,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop_path: Sequence[float] = (),
        norm_layer: Callable[[int], nn.Module] = nn.LayerNorm,
        act_layer: type[nn.Module] = nn.GELU,
        downsample: bool = True,
        use_act_checkpoint: bool = False,
    ) -> None:
        super().__init__()
        drop_path = list(drop_path) or [0.0] * depth
        self.window_size = window_size
        self.shift_size = window_size // 2
        self.use_act_checkpoint = use_act_checkpoint
        self.blocks = nn.ModuleList(
            SwinBlock(dim, num_heads, window_size, 0 if i % 2 == 0 else self.shift_size, mlp_ratio, qkv_bias,
                      drop_path[i], norm_layer, act_layer)
            for i in range(depth)
        )
        self.downsample = PatchMerging(dim, norm_layer) if downsample else None

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        """x: [B, H, W, C] -> (stage output [B, H, W, C], merged [B, ceil(H/2), ceil(W/2), 2C] or None)."""
        ws = self.window_size
        padded_hw = (-(-x.shape[1] // ws) * ws, -(-x.shape[2] // ws) * ws)
        mask = shifted_window_mask(padded_hw, ws, self.shift_size, x.device) if self.shift_size else None
        for block in self.blocks:
            if self.use_act_checkpoint and self.training:
                x = checkpoint(block, x, mask, use_reentrant=False)
            else:
                x = block(x, mask)
        return x, (self.downsample(x) if self.downsample is not None else None)


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


# Constructors of replacement stages receive SwinStage's keyword arguments.
StageType = Callable[..., nn.Module]


class SwinTransformer(nn.Module):
    """Swin backbone returning normalised NCHW maps of the stages in ``out_indices`` (strides 4, 8, 16, 32).

    ``stem`` replaces the patch embedding (it must map [B, 3, H, W] to [B, H/4, W/4, embed_dim]) and
    ``stage_types`` replaces stages by index with modules built from SwinStage's keyword arguments; STViT-R
    uses both (``densevit.backbones.swin_stvit_r``). ``densevit.checkpoint.load_weights`` loads mmdet detection
    checkpoints (keys under ``backbone.``) or ImageNet classification checkpoints into it (converter ``swin``).
    """

    default_converter: ClassVar[str] = "swin"

    def __init__(
        self,
        *,
        embed_dim: int = 96,
        depths: Sequence[int] = (2, 2, 6, 2),
        num_heads: Sequence[int] = (3, 6, 12, 24),
        window_size: int = 7,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop_path_rate: float = 0.2,
        patch_size: int = 4,
        in_chans: int = 3,
        norm_layer: Callable[[int], nn.Module] = nn.LayerNorm,
        act_layer: type[nn.Module] = nn.GELU,
        out_indices: Sequence[int] = (0, 1, 2, 3),
        use_act_checkpoint: bool = False,
        stem: nn.Module | None = None,
        stage_types: Mapping[int, StageType] | None = None,
    ) -> None:
        super().__init__()
        num_stages = len(depths)
        if len(num_heads) != num_stages:
            raise ValueError(f"SwinTransformer: {len(num_heads)} num_heads for {num_stages} stages (depths)")
        outs = tuple(out_indices)
        if not outs or list(outs) != sorted(set(outs)) or not all(0 <= i < num_stages for i in outs):
            raise ValueError(f"SwinTransformer: out_indices {outs} must be increasing stage indexes in "
                             f"0..{num_stages - 1}")
        stage_types = dict(stage_types or {})
        bad = [i for i in stage_types if not 0 <= i < num_stages]
        if bad:
            raise ValueError(f"SwinTransformer: stage_types for stages {bad} outside 0..{num_stages - 1}")
        self.out_indices = outs
        self.num_features = tuple(embed_dim * 2**i for i in range(num_stages))
        self.output_shapes = tuple(ShapeSpec(self.num_features[i], patch_size * 2**i) for i in outs)

        self.patch_embed = stem if stem is not None else PatchEmbed(patch_size, in_chans, embed_dim, norm_layer)
        # rises over all blocks; computed on the CPU so the model also builds under a meta-device context
        rates = torch.linspace(0, drop_path_rate, sum(depths), device="cpu").tolist()
        self.layers = nn.ModuleList()
        for i, depth in enumerate(depths):
            first = sum(depths[:i])
            self.layers.append(stage_types.get(i, SwinStage)(
                dim=self.num_features[i],
                depth=depth,
                num_heads=num_heads[i],
                window_size=window_size,
                mlp_ratio=mlp_ratio,
                qkv_bias=qkv_bias,
                drop_path=rates[first : first + depth],
                norm_layer=norm_layer,
                act_layer=act_layer,
                downsample=i < num_stages - 1,
                use_act_checkpoint=use_act_checkpoint,
            ))
        for i in outs:
            self.add_module(f"norm{i}", norm_layer(self.num_features[i]))
        # Every linear layer, those of replacement stages too (the reference's init_weights does the same).
        self.apply(_init_weights)

    def forward(self, x: Tensor) -> list[Tensor]:
        """x: [B, 3, H, W] -> normalised [B, C_i, H / s_i, W / s_i] maps for the stages in ``out_indices``."""
        x = self.patch_embed(x)
        outs = []
        for i, layer in enumerate(self.layers):
            out, x = layer(x)
            if i in self.out_indices:
                outs.append(getattr(self, f"norm{i}")(out).permute(0, 3, 1, 2))
        return outs


# --- sizes ---------------------------------------------------------------------------------------------------

# ``SwinTransformer(**SWIN_SIZES["small"])``; drop-path rates of the mmdet detection recipes.
SWIN_SIZES: dict[str, dict[str, Any]] = {
    "tiny": dict(embed_dim=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24), drop_path_rate=0.2),
    "small": dict(embed_dim=96, depths=(2, 2, 18, 2), num_heads=(3, 6, 12, 24), drop_path_rate=0.2),
    "base": dict(embed_dim=128, depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32), drop_path_rate=0.3),
}

"""STViT-R-Swin: the released dense-prediction variant (Chang et al., CVPR 2023), loading its checkpoints as is.

Against plain Swin: the patch embedding is a conv stem (two 3x3 stride-2 Conv-BN-Hardswish) and stage 3 is
three dumbbell units of 6 blocks (``densevit.ops.dumbbell``): an unshifted 7x7 window block on the image
tokens, semantic-token initialisation (7x7 windows max-pooled to 3x3, keys/values from a 14x14 region), a
second pass over a 21x21 region, attention within each 3x3 group, global attention over all semantic tokens,
and recovery of the image tokens from a 27x27 neighbourhood of semantic tokens. The new blocks have separate
``q`` / ``kv`` projections and layer scale (1e-5).

Reproduced as released, so released weights give released outputs: LayerNorm eps 1e-5 everywhere (the
released detection code passes ``nn.LayerNorm`` into the semantic blocks, overriding their 1e-6 default), zero
padding that takes part in max pooling, and the released padding mask (``pad_mask="released"``; see
``densevit.ops.semantic_tokens.padding_mask``). Keys and values are projected once per token, not once per
overlapping region, which is where the paper's FLOPs saving comes from.

Checkpoint keys (mmdet, under ``backbone.``): ``patch_embed.proj.{0,2}.{c.weight, bn.*}``, standard Swin keys for
stages 0, 1, 3 and for blocks 0, 6, 12 of stage 2, ``layers.2.blocks.N.{norm1, attn.q, attn.kv, attn.proj,
layer_scale_1, norm2, mlp.fc1, mlp.fc2, layer_scale_2}`` for the others, ``layers.N.downsample.*``, ``norm0..3``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import torch
from timm.layers import DropPath, Mlp
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from densevit.backbones.swin import SWIN_SIZES, PatchMerging, SwinBlock, SwinTransformer
from densevit.layers import ConvNormAct
from densevit.ops.attention import grouped_attention
from densevit.ops.dumbbell import DumbbellConfig, apply_role, check_roles, dumbbell_roles
from densevit.ops.resize import pad_to_multiple

__all__ = [
    "STVIT_R_SWIN_SIZES",
    "DumbbellStage",
    "STViTRStem",
    "SemanticAttention",
    "SemanticBlock",
    "SwinSTViTR",
]


class STViTRStem(nn.Module):
    """STViT-R-Swin's patch embedding: two 3x3 stride-2 Conv-BN-Hardswish layers (``proj.0``, ``proj.2``).

    [B, 3, H, W] -> [B, H/4, W/4, C].
    """

    def __init__(self, in_chans: int = 3, embed_dim: int = 96, patch_size: int = 4) -> None:
        super().__init__()
        self.patch_size = patch_size
        # Conv-BN pairs named ``c``, ``bn`` as in the released checkpoints, the activations between them.
        conv_bn = partial(ConvNormAct, kernel_size=3, stride=2, act_layer=None, names=("c", "bn"))
        self.proj = nn.Sequential(
            conv_bn(in_chans, embed_dim // 2), nn.Hardswish(), conv_bn(embed_dim // 2, embed_dim), nn.Hardswish()
        )

    def forward(self, x: Tensor) -> Tensor:
        """x: [B, 3, H, W] -> [B, ceil(H / 4), ceil(W / 4), C] (zero-padded to a multiple of 4 first)."""
        # Channels-last convolutions are faster on the CPU (oneDNN), and the permuted output is then contiguous.
        x = pad_to_multiple(x, self.patch_size).contiguous(memory_format=torch.channels_last)
        return self.proj(x).permute(0, 2, 3, 1)


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

    def attend(self, q: Tensor, kv: Tensor, mask: Tensor | None = None) -> Tensor:
        """q [B, G, Lq, C] (from ``q``) attend to kv [B, G, Lk, 2C] (from ``kv``) -> projected [B, G, Lq, C]."""
        return self.proj(grouped_attention(q, kv, self.num_heads, mask))


class SemanticBlock(nn.Module):
    """Pre-norm block with layer scale for the dumbbell roles other than ``image`` (the new STViT-R-Swin blocks).

    Parameter names follow the released checkpoints: ``norm1, attn.{q,kv,proj}, layer_scale_1, norm2,
    mlp.{fc1,fc2}, layer_scale_2``. It has no forward of its own: ``densevit.ops.dumbbell.apply_role`` runs it
    through its ``RoleBlock`` methods.
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

    def queries(self, x: Tensor) -> Tensor:
        """Normalised and projected queries: [..., C] -> [..., C]."""
        return self.attn.q(self.norm1(x))

    def keys_values(self, x: Tensor) -> Tensor:
        """Normalised and projected keys then values: [..., C] -> [..., 2C]."""
        return self.attn.kv(self.norm1(x))

    def queries_keys_values(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``queries`` and ``keys_values`` of the same tokens, normalised once: [..., C] -> ([..., C], [..., 2C])."""
        y = self.norm1(x)
        return self.attn.q(y), self.attn.kv(y)

    def attend(
        self, q: Tensor, kv: Tensor, q_hw: tuple[int, int], k_hw: tuple[int, int], mask: Tensor | None = None
    ) -> Tensor:
        """q [B, G, Lq, C] attend to kv [B, G, Lk, 2C] group by group -> projected [B, G, Lq, C] (no positions)."""
        return self.attn.attend(q, kv, mask)

    def attention_residual(self, x: Tensor, out: Tensor) -> Tensor:
        """x plus the layer-scaled attention output ``out``."""
        return x + self.drop_path(out * self.layer_scale_1)

    def mlp_residual(self, x: Tensor) -> Tensor:
        """x plus the layer-scaled MLP branch."""
        return x + self.drop_path(self.mlp(self.norm2(x)) * self.layer_scale_2)


class DumbbellStage(nn.Module):
    """A Swin stage whose blocks play dumbbell roles: ``SwinBlock`` (unshifted) for ``image``, else ``SemanticBlock``.

    Takes SwinStage's keyword arguments plus the dumbbell settings; ``roles`` defaults to the released units.
    """

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
        roles: Sequence[str] | None = None,
        pooled: int = 3,
        init_kernel: int = 14,
        refine_kernel: int = 21,
        recover_kernel: int = 27,
        layer_scale_init: float = 1e-5,
        pad_mask: str = "released",
    ) -> None:
        super().__init__()
        roles = tuple(roles) if roles is not None else dumbbell_roles(depth)
        if len(roles) != depth:
            raise ValueError(f"DumbbellStage: {len(roles)} roles for a stage of depth {depth}")
        check_roles(roles, "DumbbellStage")
        drop_path = list(drop_path) or [0.0] * depth
        self.roles = roles
        self.cfg = DumbbellConfig(window_size, pooled, init_kernel, refine_kernel, recover_kernel, pad_mask)
        self.use_act_checkpoint = use_act_checkpoint
        self.blocks = nn.ModuleList(
            SwinBlock(dim, num_heads, window_size, 0, mlp_ratio, qkv_bias, drop_path[i], norm_layer, act_layer)
            if role == "image"
            else SemanticBlock(dim, num_heads, mlp_ratio, qkv_bias, drop_path[i], norm_layer, act_layer,
                               layer_scale_init)
            for i, role in enumerate(roles)
        )
        self.downsample = PatchMerging(dim, norm_layer) if downsample else None

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        """x: [B, H, W, C] -> (stage output [B, H, W, C], merged [B, ceil(H/2), ceil(W/2), 2C] or None)."""
        s = None
        for block, role in zip(self.blocks, self.roles, strict=True):
            step = partial(apply_role, role, block, cfg=self.cfg)
            if self.use_act_checkpoint and self.training:
                x, s = checkpoint(step, x, s, use_reentrant=False)
            else:
                x, s = step(x, s)
        return x, (self.downsample(x) if self.downsample is not None else None)


class SwinSTViTR(SwinTransformer):
    """Swin with the STViT-R conv stem and a dumbbell stage (stage 3 by default); outputs as ``SwinTransformer``.

    ``densevit.checkpoint.load_weights`` loads the released detection checkpoints (mmdet, ``backbone.`` keys) with
    no missing or unexpected keys, or the released ImageNet STViT-R-Swin checkpoints (their output norms are new).
    """

    def __init__(
        self,
        *,
        embed_dim: int = 96,
        depths: Sequence[int] = (2, 2, 18, 2),
        num_heads: Sequence[int] = (3, 6, 12, 24),
        window_size: int = 7,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop_path_rate: float = 0.2,
        in_chans: int = 3,
        norm_layer: Callable[[int], nn.Module] = nn.LayerNorm,
        act_layer: type[nn.Module] = nn.GELU,
        out_indices: Sequence[int] = (0, 1, 2, 3),
        use_act_checkpoint: bool = False,
        dumbbell_stage: int = 2,
        roles: Sequence[str] | None = None,
        pooled: int = 3,
        init_kernel: int = 14,
        refine_kernel: int = 21,
        recover_kernel: int = 27,
        layer_scale_init: float = 1e-5,
        pad_mask: str = "released",
    ) -> None:
        stage = partial(DumbbellStage, roles=roles, pooled=pooled, init_kernel=init_kernel,
                        refine_kernel=refine_kernel, recover_kernel=recover_kernel,
                        layer_scale_init=layer_scale_init, pad_mask=pad_mask)
        super().__init__(
            embed_dim=embed_dim, depths=depths, num_heads=num_heads, window_size=window_size, mlp_ratio=mlp_ratio,
            qkv_bias=qkv_bias, drop_path_rate=drop_path_rate, in_chans=in_chans, norm_layer=norm_layer,
            act_layer=act_layer, out_indices=out_indices, use_act_checkpoint=use_act_checkpoint,
            stem=STViTRStem(in_chans, embed_dim), stage_types={dumbbell_stage: stage},
        )


# ``SwinSTViTR(**STVIT_R_SWIN_SIZES["small"])`` is the released STViT-R-Swin-S backbone.
STVIT_R_SWIN_SIZES: dict[str, dict[str, Any]] = {size: dict(SWIN_SIZES[size]) for size in ("small", "base")}

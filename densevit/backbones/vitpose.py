"""ViTPose's plain ViT (Xu et al. 2022): the densevit ViT with ViTPose's patch padding, folded positions and last norm.

Three details differ from a timm ViT and all three matter with the official weights:

* the patch projection pads the crop by 2 pixels (``4 + 2 * (ratio // 2 - 1)`` with ratio 1): a 256x192 crop still
  gives 16x12 tokens, but each patch is shifted 2 pixels up-left;
* there is no class token, yet ``pos_embed`` keeps its class slot [1, 1 + h * w, C] and the forward adds that slot
  to every token (``pos[:, 1:] + pos[:, :1]``); the table is as large as the token grid, nothing is resized;
* a final LayerNorm ``last_norm`` follows the blocks.

ViTPose-S has 12 heads (timm's ViT-S has 6: its weights load silently but attend differently).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from densevit.backbones.interface import ShapeSpec
from densevit.backbones.vit import LAYER_NORM, ViT

__all__ = ["VITPOSE_LAYER_DECAY", "VITPOSE_SIZES", "ViTPoseBackbone"]


class ViTPoseBackbone(ViT):
    """ViTPose's ViT: one [B, C, H / 16, W / 16] map after the last block and ``last_norm``.

    ``img_size`` is (height, width) of the crop and fixes the position table to its token grid. Another input
    size resizes the folded table bicubically (ViTPose never does: its crops always have ``img_size``).
    Parameter names are the official ones without the ``backbone.`` prefix (``patch_embed.proj``, ``pos_embed``,
    ``blocks.N.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}``, ``last_norm``), so official files load as they are.
    """

    # An MAE file initialises it: grid resized to the crop's, the class slot kept (see checkpoint.py).
    default_converter: ClassVar[str] = "vitpose_mae"

    def __init__(
        self,
        *,
        img_size: Sequence[int] = (256, 192),
        patch_size: int = 16,
        patch_padding: int = 2,
        in_chans: int = 3,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop_path_rate: float = 0.0,
        last_norm: bool = True,
        use_act_checkpoint: bool = False,
    ) -> None:
        height, width = (int(v) for v in img_size)
        grid = (height // patch_size, width // patch_size)
        if min(grid) < 1:
            raise ValueError(f"ViTPoseBackbone: img_size {tuple(img_size)} is smaller than patch_size {patch_size}")
        # The parent builds the blocks (drop path linspace(0, rate) over depth, as ViTPose) and a placeholder table.
        super().__init__(img_size=patch_size, patch_size=patch_size, in_chans=in_chans, embed_dim=embed_dim,
                         depth=depth, num_heads=num_heads, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias,
                         drop_path_rate=drop_path_rate, use_act_checkpoint=use_act_checkpoint)
        self.grid = grid
        self.output_shapes = (ShapeSpec(embed_dim, patch_size),)
        self.patch_embed.proj = nn.Conv2d(in_chans, embed_dim, patch_size, stride=patch_size, padding=patch_padding)
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + grid[0] * grid[1], embed_dim))  # slot 0: the class slot
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.last_norm = LAYER_NORM(embed_dim) if last_norm else nn.Identity()

    def positions(self, hw: tuple[int, int]) -> Tensor:
        """The folded position table (class slot added to every position) for an (h, w) grid: [1, h, w, C]."""
        pos = self.pos_embed[:, 1:] + self.pos_embed[:, :1]
        pos = pos.reshape(1, *self.grid, -1)
        if tuple(hw) != self.grid:
            pos = F.interpolate(pos.permute(0, 3, 1, 2), size=tuple(hw), mode="bicubic", align_corners=False)
            pos = pos.permute(0, 2, 3, 1)
        return pos

    def add_positions(self, x: Tensor) -> Tensor:
        """Tokens [B, h, w, C] plus the folded position table."""
        return x + self.positions((x.shape[1], x.shape[2]))

    def forward(self, x: Tensor) -> list[Tensor]:
        """x: [B, 3, H, W] -> [last_norm(tokens)] as one [B, C, h, w] map."""
        x = self.embed(x)
        use_checkpoint = self.use_act_checkpoint and self.training
        for block in self.blocks:
            x = checkpoint(block, x, use_reentrant=False) if use_checkpoint else block(x)
        return [self.last_norm(x).permute(0, 3, 1, 2)]


# --- sizes ------------------------------------------------------------------------------------------------


def _size(embed_dim: int, depth: int, num_heads: int, drop_path_rate: float) -> dict[str, Any]:
    return dict(embed_dim=embed_dim, depth=depth, num_heads=num_heads, drop_path_rate=drop_path_rate)


# ``ViTPoseBackbone(**VITPOSE_SIZES["base"])`` is ViTPose-B's backbone; drop path as ViTPose trains each size.
VITPOSE_SIZES: dict[str, dict[str, Any]] = {
    "small": _size(384, 12, 12, 0.1),
    "base": _size(768, 12, 12, 0.3),
    "large": _size(1024, 24, 16, 0.5),
    "huge": _size(1280, 32, 16, 0.55),
}

# Layer-wise lr decay of the official configs (S was 0.9 before ViTPose commit 4fd8507, Jan 2023).
VITPOSE_LAYER_DECAY: dict[str, float] = {"small": 0.8, "base": 0.75, "large": 0.8, "huge": 0.85}


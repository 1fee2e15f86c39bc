"""ViT with a convolutional stem (Xiao et al., 2021) whose early maps can join its outputs (DPT-Hybrid).

A stack of 3x3 stride-2 convolutions (BatchNorm, ReLU) and a 1x1 projection to the embedding replace the
patchify projection. "Early Convolutions Help Transformers See Better" reports that this stem makes a ViT
optimise faster and more stably from scratch at the cost of about one block. ``stem_out_indices`` returns
stem stages' maps (stage ``i`` has stride ``2 ** (i + 1)``) before the blocks' token maps, as DPT-Hybrid (Ranftl
et al., 2021) feeds its convolutional stages at strides 4 and 8 and two ViT blocks to the DPT head.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from itertools import pairwise
from typing import Any, ClassVar

from torch import Tensor, nn

from densevit.backbones.interface import ShapeSpec
from densevit.backbones.vit import ViT
from densevit.layers import ConvNormAct
from densevit.ops.resize import pad_to_multiple

__all__ = ["ConvStem", "HybridViT"]


class ConvStem(nn.Module):
    """3x3 stride-2 conv + BatchNorm + ReLU per width, then a 1x1 conv to ``embed_dim``; stride 2 ** len(widths).

    The image is zero-padded bottom/right to a multiple of the stride, as ``PatchEmbed`` does.
    """

    def __init__(self, widths: Sequence[int] = (32, 64, 128, 192), in_chans: int = 3, embed_dim: int = 192) -> None:
        super().__init__()
        if not widths:
            raise ValueError("ConvStem needs at least one stage width")
        channels = (in_chans, *widths)
        self.stages = nn.ModuleList(ConvNormAct(c_in, c_out, 3, stride=2) for c_in, c_out in pairwise(channels))
        self.proj = nn.Conv2d(widths[-1], embed_dim, kernel_size=1)
        self.patch_size = 2 ** len(widths)

    def stage_maps(self, x: Tensor) -> list[Tensor]:
        """x: [B, 3, H, W] -> every stage's map, stage i [B, widths[i], ceil(H / 2 ** (i + 1)), ...]."""
        x = pad_to_multiple(x, self.patch_size)
        maps = []
        for stage in self.stages:
            x = stage(x)
            maps.append(x)
        return maps

    def tokens(self, last_map: Tensor) -> Tensor:
        """The last stage's map [B, C, h, w] -> tokens [B, h, w, embed_dim]."""
        return self.proj(last_map).permute(0, 2, 3, 1)

    def forward(self, x: Tensor) -> Tensor:
        """x: [B, 3, H, W] -> tokens [B, ceil(H / p), ceil(W / p), embed_dim] (p = the stem's stride)."""
        return self.tokens(self.stage_maps(x)[-1])


class HybridViT(ViT):
    """``ViT`` whose patch embedding is a ``ConvStem``; outputs the stem maps of ``stem_out_indices``, then the blocks'.

    ``stem_widths`` has log2(patch_size) entries (4 for patch 16). Every other argument is ``ViT``'s. A timm / MAE
    file loaded with ``densevit.checkpoint.load_weights`` fills the blocks and position table; the stem starts from
    scratch (the file's patch projection is skipped). With ``stem_out_indices=(1, 2)`` and two ``out_indices`` the
    outputs sit at strides 4, 8, p, p (DPT-Hybrid's layout).
    """

    default_converter: ClassVar[str] = "hybrid_vit"

    def __init__(
        self,
        *,
        stem_widths: Sequence[int] = (32, 64, 128, 192),
        stem_out_indices: Sequence[int] = (),
        **vit_kwargs: Any,
    ) -> None:
        accepted = [n for n in inspect.signature(ViT.__init__).parameters if n != "self"]
        unknown = [k for k in vit_kwargs if k not in accepted]
        if unknown:
            raise TypeError(f"HybridViT: unknown argument(s) {', '.join(map(repr, unknown))}; accepted: stem_widths, "
                            f"stem_out_indices and ViT's {', '.join(accepted)}")
        super().__init__(**vit_kwargs)
        if 2 ** len(stem_widths) != self.patch_size:
            raise ValueError(f"HybridViT: {len(stem_widths)} stem stages give stride {2 ** len(stem_widths)}, "
                             f"but patch_size is {self.patch_size}; give log2(patch_size) stem_widths")
        stem_outs = tuple(stem_out_indices)
        if any(not 0 <= i < len(stem_widths) for i in stem_outs) or list(stem_outs) != sorted(set(stem_outs)):
            raise ValueError(f"HybridViT: stem_out_indices {stem_outs} must be increasing stage indexes in "
                             f"0..{len(stem_widths) - 1}")
        self.patch_embed = ConvStem(stem_widths, vit_kwargs.get("in_chans", 3), self.embed_dim)
        self.stem_out_indices = stem_outs
        self.output_shapes = tuple(ShapeSpec(stem_widths[i], 2 ** (i + 1)) for i in stem_outs) + self.output_shapes

    def forward(self, x: Tensor) -> list[Tensor]:
        """x: [B, 3, H, W] -> the ``stem_out_indices`` maps, then one token map per ``out_indices`` entry."""
        maps = self.patch_embed.stage_maps(x)
        tokens = self.add_positions(self.patch_embed.tokens(maps[-1]))
        return [maps[i] for i in self.stem_out_indices] + self.forward_blocks(tokens)

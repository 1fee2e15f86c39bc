"""ViTDet simple feature pyramid: strides 4-32 (+64) built from the single stride-16 map of a plain ViT.

Module names mirror detectron2 (``simfp_2`` .. ``simfp_5`` with the same sequential indices, convs with
``.weight`` and ``.norm``), so detectron2 ViTDet weights map one to one (``densevit.checkpoint``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from densevit.backbones.interface import ShapeSpec, output_shapes
from densevit.layers import LayerNorm2d

__all__ = ["ConvNorm", "SimpleFeaturePyramid"]


class ConvNorm(nn.Conv2d):
    """Bias-free convolution followed by a channel LayerNorm (detectron2's ``Conv2d(..., norm=LN)``).

    Kept apart from ``densevit.layers.ConvNormAct`` for its state-dict layout, which ViTDet checkpoints use: the
    conv's ``weight`` at the module itself and ``norm.*`` beside it.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False)
        self.norm = LayerNorm2d(out_channels)
        # MSRA fill as in detectron2 (kaiming normal, fan_out).
        nn.init.kaiming_normal_(self.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: Tensor) -> Tensor:
        """x: [B, C_in, H, W] -> [B, C_out, H, W]."""
        return self.norm(super().forward(x))


def _resample_layers(dim: int, scale: float) -> tuple[list[nn.Module], int]:
    """Layers that bring a stride-16 map of ``dim`` channels to ``16 / scale``; returns (layers, channels)."""
    if scale == 4.0:
        return [
            nn.ConvTranspose2d(dim, dim // 2, kernel_size=2, stride=2),
            LayerNorm2d(dim // 2),
            nn.GELU(),
            nn.ConvTranspose2d(dim // 2, dim // 4, kernel_size=2, stride=2),
        ], dim // 4
    if scale == 2.0:
        return [nn.ConvTranspose2d(dim, dim // 2, kernel_size=2, stride=2)], dim // 2
    if scale == 1.0:
        return [], dim
    if scale == 0.5:
        return [nn.MaxPool2d(kernel_size=2, stride=2)], dim
    raise ValueError(f"SimpleFeaturePyramid: scale factor {scale} is not one of 4.0, 2.0, 1.0, 0.5")


class SimpleFeaturePyramid(nn.Module):
    """ViTDet pyramid over a ViT with one stride-16 output: deconv/pool per level, then 1x1 and 3x3 ConvNorm.

    ``top_block`` adds p6 = max_pool2d(last level, kernel 1, stride 2). ``output_shapes`` lists the levels in
    increasing stride, e.g. ``out_channels`` 256 at strides (4, 8, 16, 32, 64). A backbone may also return finer
    maps before its stride-16 map (a ``HybridViT``'s stem maps): each is added to the level of its stride through
    a 1x1 ConvNorm lateral (``stem_lateral_<stride>``), as an FPN adds its laterals; not part of ViTDet.
    """

    def __init__(
        self,
        backbone: nn.Module,
        out_channels: int = 256,
        scale_factors: Sequence[float] = (4.0, 2.0, 1.0, 0.5),
        top_block: bool = True,
    ) -> None:
        super().__init__()
        shapes = output_shapes(backbone, "SimpleFeaturePyramid")
        strides = tuple(s.stride for s in shapes)
        channels = tuple(s.channels for s in shapes)
        if strides[-1] != 16 or any(s >= 16 for s in strides[:-1]):
            raise ValueError(
                "SimpleFeaturePyramid needs a backbone whose last output is its only stride-16 map (a patch-16 ViT "
                f"with one out index, optionally after finer stem maps); {type(backbone).__name__} declares strides "
                f"{strides}, channels {channels}"
            )
        if not scale_factors or list(scale_factors) != sorted(set(scale_factors), reverse=True):
            raise ValueError(f"SimpleFeaturePyramid: scale_factors {tuple(scale_factors)} must be decreasing")
        self.backbone = backbone
        self.top_block = top_block
        self.stage_names: list[str] = []
        dim = channels[-1]
        for scale in scale_factors:
            layers, level_dim = _resample_layers(dim, scale)
            layers += [ConvNorm(level_dim, out_channels, 1), ConvNorm(out_channels, out_channels, 3)]
            # Stage name from the level (stride 4 -> simfp_2), as detectron2 names it.
            name = f"simfp_{int(math.log2(16 / scale))}"
            self.add_module(name, nn.Sequential(*layers))
            self.stage_names.append(name)
        level_strides = [int(16 / s) for s in scale_factors]
        self.stem_strides: tuple[int, ...] = tuple(strides[:-1])
        unmatched = [s for s in self.stem_strides if s not in level_strides]
        if unmatched:
            raise ValueError(f"SimpleFeaturePyramid: the backbone's stem maps at strides {unmatched} have no pyramid "
                             f"level (levels at {level_strides}); drop them from its stem_out_indices")
        for c, stride in zip(channels[:-1], self.stem_strides, strict=True):
            self.add_module(f"stem_lateral_{stride}", ConvNorm(c, out_channels, 1))
        if top_block:
            level_strides.append(level_strides[-1] * 2)
        self.level_strides = tuple(level_strides)
        self.output_shapes = tuple(ShapeSpec(out_channels, s) for s in level_strides)

    def forward(self, x: Tensor) -> list[Tensor]:
        """x: [B, 3, H, W] -> one [B, out_channels, H / s, W / s] map per level of ``output_shapes``."""
        *stem_maps, feature = self.backbone(x)  # finer stem maps, if any, then [B, C, H / 16, W / 16]
        outs = [getattr(self, name)(feature) for name in self.stage_names]
        for stride, stem_map in zip(self.stem_strides, stem_maps, strict=True):
            level = self.level_strides.index(stride)
            outs[level] = outs[level] + getattr(self, f"stem_lateral_{stride}")(stem_map)
        if self.top_block:
            outs.append(F.max_pool2d(outs[-1], kernel_size=1, stride=2))
        return outs

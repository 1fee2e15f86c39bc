"""UperNet decode head (Xiao et al. 2018) as mmsegmentation builds it for ViT-Adapter / ViT-CoMer.

Pyramid pooling (scales 1, 2, 3, 6) on the coarsest map, lateral 1x1 convs, a top-down path with bilinear
upsampling, 3x3 convs per level, concat of all levels at the finest resolution, 3x3 fuse conv and a 1x1 classifier.
Every conv is conv-BN-ReLU with ``channels`` outputs (512 in the reference).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import torch
from torch import Tensor, nn

from densevit.heads.seg_heads import check_features, classifier
from densevit.layers import ConvNormAct, NormLayer
from densevit.ops.resize import resize

__all__ = ["PyramidPooling", "UPerHead"]


class PyramidPooling(nn.Module):
    """PSP module: average-pool to each scale, 1x1 conv, upsample back; concat with the input and a 3x3 conv."""

    def __init__(
        self,
        in_channels: int,
        channels: int,
        pool_scales: Sequence[int] = (1, 2, 3, 6),
        norm_layer: NormLayer = nn.BatchNorm2d,
    ) -> None:
        super().__init__()
        conv = partial(ConvNormAct, norm_layer=norm_layer, fan_out_init=True)  # mmcv's ConvModule
        self.stages = nn.ModuleList(
            nn.Sequential(nn.AdaptiveAvgPool2d(scale), conv(in_channels, channels, 1)) for scale in pool_scales
        )
        self.bottleneck = conv(in_channels + len(pool_scales) * channels, channels, 3)

    def forward(self, x: Tensor) -> Tensor:
        """x: [B, C_in, h, w] -> [B, channels, h, w]."""
        pooled = [resize(stage(x), x.shape[-2:]) for stage in self.stages]
        return self.bottleneck(torch.cat([x, *pooled], dim=1))


class UPerHead(nn.Module):
    """UperNet head over maps of increasing stride (e.g. 4/8/16/32): logits at the finest map's resolution."""

    def __init__(
        self,
        in_channels: Sequence[int],
        num_classes: int,
        channels: int = 512,
        pool_scales: Sequence[int] = (1, 2, 3, 6),
        dropout: float = 0.1,
        norm_layer: NormLayer = nn.BatchNorm2d,
        cls_init_std: float | None = 0.01,
    ) -> None:
        super().__init__()
        if len(in_channels) < 2:
            raise ValueError(f"UPerHead needs at least two input levels, got in_channels {tuple(in_channels)}")
        self.in_channels: tuple[int, ...] = tuple(in_channels)
        self.num_classes = num_classes
        self.psp = PyramidPooling(self.in_channels[-1], channels, pool_scales, norm_layer)
        conv = partial(ConvNormAct, norm_layer=norm_layer, fan_out_init=True)  # mmcv's ConvModule
        self.lateral_convs = nn.ModuleList(conv(c, channels, 1) for c in self.in_channels[:-1])
        self.fpn_convs = nn.ModuleList(conv(channels, channels, 3) for _ in self.in_channels[:-1])
        self.fuse = conv(len(self.in_channels) * channels, channels, 3)
        self.cls = classifier(channels, num_classes, dropout, cls_init_std)

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        """features: maps [B, C_i, h_i, w_i], finest first -> logits [B, K, h_0, w_0]."""
        check_features(self, features)
        laterals = [conv(f) for conv, f in zip(self.lateral_convs, features[:-1], strict=True)]
        laterals.append(self.psp(features[-1]))
        for i in range(len(laterals) - 1, 0, -1):
            laterals[i - 1] = laterals[i - 1] + resize(laterals[i], laterals[i - 1].shape[-2:])
        outs = [conv(lat) for conv, lat in zip(self.fpn_convs, laterals[:-1], strict=True)] + [laterals[-1]]
        size = outs[0].shape[-2:]
        return self.cls(self.fuse(torch.cat([resize(o, size) for o in outs], dim=1)))

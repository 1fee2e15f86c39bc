"""Small segmentation heads and their building blocks: the classifier, FCN (auxiliary) and MLP heads.

Every head takes a list of NCHW maps (increasing stride, channels given as ``in_channels``) and returns class
logits [B, K, h, w] at the resolution of its first map.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from densevit.layers import ConvNormAct, NormLayer
from densevit.ops.resize import resize

__all__ = ["FCNHead", "MLPHead", "check_features", "classifier"]


def check_features(head: nn.Module, features: Sequence[Tensor]) -> None:
    """Fail clearly when the maps handed to a head do not match the channels it was built for."""
    channels = tuple(f.shape[1] for f in features)
    if channels != head.in_channels:
        raise ValueError(f"{type(head).__name__} was built for input channels {head.in_channels}, "
                         f"got maps with channels {channels}")


def classifier(
    channels: int, num_classes: int, dropout: float = 0.1, init_std: float | None = 0.01
) -> nn.Sequential:
    """Dropout2d -> 1x1 conv to class logits.

    ``init_std`` 0.01 is mmsegmentation's ``conv_seg`` init (weights normal(0, 0.01), bias 0); None keeps PyTorch's
    default init. From scratch the tiny weights stall learning: with them a head trained for 1000 iterations on
    the demo still predicted background everywhere, with the default init it did not (README, quickstart).
    """
    conv = nn.Conv2d(channels, num_classes, kernel_size=1)
    if init_std is not None:
        nn.init.normal_(conv.weight, std=init_std)
        nn.init.zeros_(conv.bias)
    return nn.Sequential(nn.Dropout2d(dropout), conv)


class FCNHead(nn.Module):
    """FCN head on one map: ``num_convs`` conv-BN-ReLU layers and a classifier (UperNet's auxiliary head)."""

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        channels: int = 256,
        num_convs: int = 1,
        kernel_size: int = 3,
        dropout: float = 0.1,
        norm_layer: NormLayer = nn.BatchNorm2d,
        cls_init_std: float | None = 0.01,
    ) -> None:
        super().__init__()
        if num_convs < 1:
            raise ValueError(f"FCNHead: num_convs must be >= 1, got {num_convs}")
        self.in_channels: tuple[int, ...] = (in_channels,)
        self.num_classes = num_classes
        self.convs = nn.Sequential(*(
            ConvNormAct(in_channels if i == 0 else channels, channels, kernel_size, norm_layer=norm_layer,
                        fan_out_init=True) for i in range(num_convs)
        ))
        self.cls = classifier(channels, num_classes, dropout, cls_init_std)

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        """features: one [B, C, h, w] map -> logits [B, K, h, w]."""
        check_features(self, features)
        return self.cls(self.convs(features[0]))


class MLPHead(nn.Module):
    """Light per-pixel head (SegFormer's all-MLP decoder): 1x1 projection per level, upsample, concat, 1x1 fuse."""

    def __init__(
        self,
        in_channels: Sequence[int],
        num_classes: int,
        channels: int = 256,
        dropout: float = 0.1,
        norm_layer: NormLayer = nn.BatchNorm2d,
        cls_init_std: float | None = 0.01,
    ) -> None:
        super().__init__()
        self.in_channels: tuple[int, ...] = tuple(in_channels)
        self.num_classes = num_classes
        self.projections = nn.ModuleList(nn.Conv2d(c, channels, kernel_size=1) for c in self.in_channels)
        self.fuse = ConvNormAct(len(self.in_channels) * channels, channels, 1, norm_layer=norm_layer, fan_out_init=True)
        self.cls = classifier(channels, num_classes, dropout, cls_init_std)

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        """features: maps [B, C_i, h_i, w_i] -> logits [B, K, h_0, w_0]."""
        check_features(self, features)
        size = features[0].shape[-2:]
        projected = [resize(proj(f), size) for proj, f in zip(self.projections, features, strict=True)]
        return self.cls(self.fuse(torch.cat(projected, dim=1)))

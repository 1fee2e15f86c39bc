"""Standard feature pyramid network (Lin et al. 2017) over any multi-scale backbone or adapter."""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["FPN"]


class FPN(nn.Module):
    """FPN neck: lateral 1x1 convs, top-down nearest upsampling + add, 3x3 output convs, optional pooled p6.

    The backbone follows the adapter interface: ``out_channels`` / ``strides`` tuples (increasing strides) and
    ``forward(x) -> list`` of NCHW maps (e.g. ``TimmBackbone`` or ViT-CoMer's four maps).
    """

    def __init__(self, backbone: nn.Module, out_channels: int = 256, extra_pool: bool = True) -> None:
        super().__init__()
        in_channels = getattr(backbone, "out_channels", None)
        strides = getattr(backbone, "strides", None)
        declared = isinstance(in_channels, Sequence) and isinstance(strides, Sequence)
        if not declared or not in_channels or len(in_channels) != len(strides) or list(strides) != sorted(set(strides)):
            raise ValueError(
                f"FPN needs a backbone declaring out_channels and strides of the same length with increasing "
                f"strides; {type(backbone).__name__} declares out_channels {in_channels}, strides {strides}"
            )
        in_channels, strides = tuple(in_channels), tuple(strides)
        self.backbone = backbone
        self.extra_pool = extra_pool
        self.lateral_convs = nn.ModuleList(nn.Conv2d(c, out_channels, kernel_size=1) for c in in_channels)
        self.output_convs = nn.ModuleList(
            nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1) for _ in in_channels
        )
        for conv in (*self.lateral_convs, *self.output_convs):
            # detectron2's c2_xavier_fill.
            nn.init.kaiming_uniform_(conv.weight, a=1)
            nn.init.zeros_(conv.bias)
        self.strides: tuple[int, ...] = strides + ((strides[-1] * 2,) if extra_pool else ())
        self.out_channels: tuple[int, ...] = (out_channels,) * len(self.strides)

    def forward(self, x: Tensor) -> list[Tensor]:
        """x: [B, 3, H, W] -> one [B, out_channels, h_s, w_s] map per stride in ``strides``."""
        features = self.backbone(x)
        laterals = [conv(f) for conv, f in zip(self.lateral_convs, features, strict=True)]
        # Top-down: upsample to the exact finer size (odd sizes do not double evenly).
        for i in range(len(laterals) - 1, 0, -1):
            laterals[i - 1] = laterals[i - 1] + F.interpolate(laterals[i], size=laterals[i - 1].shape[-2:],
                                                              mode="nearest")
        outs = [conv(lat) for conv, lat in zip(self.output_convs, laterals, strict=True)]
        if self.extra_pool:
            outs.append(F.max_pool2d(outs[-1], kernel_size=1, stride=2))
        return outs

"""Standard feature pyramid network (Lin et al. 2017) over any multi-scale backbone or adapter."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from densevit.backbones.interface import ShapeSpec, output_shapes

__all__ = ["FPN"]


class FPN(nn.Module):
    """FPN neck: lateral 1x1 convs, top-down nearest upsampling + add, 3x3 output convs, optional pooled p6.

    The backbone declares ``output_shapes`` with increasing strides (``densevit.backbones.interface``), e.g.
    ``TimmBackbone`` or ViT-CoMer's four maps.
    """

    def __init__(self, backbone: nn.Module, out_channels: int = 256, extra_pool: bool = True) -> None:
        super().__init__()
        shapes = output_shapes(backbone, "FPN")
        in_channels = tuple(s.channels for s in shapes)
        strides = tuple(s.stride for s in shapes)
        if list(strides) != sorted(set(strides)):
            raise ValueError(f"FPN needs a backbone with increasing strides; {type(backbone).__name__} has strides "
                             f"{strides}")
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
        out_strides = strides + ((strides[-1] * 2,) if extra_pool else ())
        self.output_shapes = tuple(ShapeSpec(out_channels, s) for s in out_strides)

    def forward(self, x: Tensor) -> list[Tensor]:
        """x: [B, 3, H, W] -> one [B, out_channels, h_s, w_s] map per entry of ``output_shapes``."""
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

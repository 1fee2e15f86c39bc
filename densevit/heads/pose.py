"""Keypoint heatmap heads (ViTPose's classic and simple decoders, a head for adapter pyramids) and their loss.

Every head maps the backbone's list of NCHW maps to heatmaps [B, K, H / 4, W / 4] (the pyramid head can give H / 2).
Parameter names of the two ViTPose decoders are those of the official ``TopdownHeatmapSimpleHead``
(``deconv_layers.{0,1,3,4}``, ``final_layer``), so official and mmpose 1.x files load after only a prefix change.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from densevit.layers import ConvNormAct
from densevit.ops.resize import resize

__all__ = ["ClassicPoseHead", "PyramidPoseHead", "SimplePoseHead", "joints_mse_loss"]


def joints_mse_loss(pred: Tensor, target: Tensor, weight: Tensor) -> Tensor:
    """ViTPose's JointsMSELoss with use_target_weight: sum_k MSE(pred_k w_k, gt_k w_k) / K (no 0.5 factor).

    pred, target: [B, K, h, w]; weight: [B, K]. Each MSE is a mean over batch and pixels, so the whole is the mean
    of (w (pred - gt))^2 over every element.
    """
    w = weight[:, :, None, None].to(pred.dtype)
    return F.mse_loss(pred * w, target.to(pred.dtype) * w)


def _init_decoder(module: nn.Module) -> None:
    # ViTPose's init: every (transposed) convolution N(0, 0.001) with zero bias, BatchNorm weight 1 / bias 0.
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.normal_(m.weight, std=0.001)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class ClassicPoseHead(nn.Module):
    """ViTPose's classic decoder on the last (stride-16) map: 2 x [ConvT k4 s2 (no bias), BN, ReLU], then a 1x1 conv."""

    def __init__(
        self,
        in_channels: int,
        num_keypoints: int,
        channels: int = 256,
        num_deconv: int = 2,
        final_kernel: int = 1,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        dim = in_channels
        for _ in range(num_deconv):
            layers += [nn.ConvTranspose2d(dim, channels, 4, stride=2, padding=1, bias=False),
                       nn.BatchNorm2d(channels), nn.ReLU(inplace=True)]
            dim = channels
        self.deconv_layers = nn.Sequential(*layers)
        self.final_layer = nn.Conv2d(dim, num_keypoints, final_kernel, padding=final_kernel // 2)
        _init_decoder(self)

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        """features: maps whose last is [B, C, h, w] -> heatmaps [B, K, 4h, 4w]."""
        return self.final_layer(self.deconv_layers(features[-1]))


class SimplePoseHead(nn.Module):
    """ViTPose's simple decoder on the last (stride-16) map: ReLU, bilinear x4 (align_corners False), 3x3 conv."""

    def __init__(self, in_channels: int, num_keypoints: int, scale_factor: int = 4) -> None:
        super().__init__()
        self.scale_factor = scale_factor
        self.final_layer = nn.Conv2d(in_channels, num_keypoints, 3, padding=1)
        _init_decoder(self)

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        """features: maps whose last is [B, C, h, w] -> heatmaps [B, K, 4h, 4w]."""
        x = F.interpolate(F.relu(features[-1]), scale_factor=self.scale_factor, mode="bilinear",
                          align_corners=False)
        return self.final_layer(x)


class PyramidPoseHead(nn.Module):
    """Heatmaps from an adapter's finest map, optionally fused with coarser levels: conv-BN-ReLU, then 1x1.

    ``in_channels`` / ``strides`` describe every map the adapter returns (its ``output_shapes``); ``fuse_strides``
    picks the levels used: each goes through a 1x1 lateral to ``channels``, is upsampled bilinearly to the finest
    one's grid and summed (a Semantic-FPN-style merge, kept to one conv after it). The heatmaps lie on that grid:
    stride 4 as ViTPose's, or stride 2 where a small person needs finer heatmaps (decoding reads their size).
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        strides: Sequence[int],
        num_keypoints: int,
        fuse_strides: Sequence[int] = (4,),
        channels: int = 256,
    ) -> None:
        super().__init__()
        if len(in_channels) != len(strides):
            raise ValueError(f"PyramidPoseHead: {len(in_channels)} in_channels for {len(strides)} strides")
        if min(fuse_strides, default=0) not in (2, 4):
            raise ValueError(f"PyramidPoseHead: the finest of fuse_strides {tuple(fuse_strides)} gives the heatmaps' "
                             "grid and must be 2 or 4")
        missing = [s for s in fuse_strides if s not in strides]
        if missing:
            raise ValueError(f"PyramidPoseHead: no input map at strides {missing}; the adapter's maps have strides "
                             f"{tuple(strides)}")
        self.levels = [list(strides).index(s) for s in sorted(fuse_strides)]
        self.laterals = nn.ModuleList(nn.Conv2d(in_channels[i], channels, 1) for i in self.levels)
        self.fuse = ConvNormAct(channels, channels, 3)
        self.final_layer = nn.Conv2d(channels, num_keypoints, 1)
        _init_decoder(self.final_layer)

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        """features: the adapter's maps -> heatmaps [B, K, H / s, W / s] on the finest fused map's grid (s 2 or 4)."""
        fine = features[self.levels[0]]
        x = self.laterals[0](fine)
        for lateral, i in zip(self.laterals[1:], self.levels[1:], strict=True):
            x = x + resize(lateral(features[i]), fine.shape[-2:])
        return self.final_layer(self.fuse(x))

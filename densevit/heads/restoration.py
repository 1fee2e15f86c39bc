"""Restoration decoder: a ViT's (or adapter's) finest maps fused with a shallow full-resolution conv branch.

A ViT's stride-16 tokens alone restore detail poorly (ViT-SR, 2025), so the layout follows SwinIR around the
transformer body: a 3x3 conv lifts the image to ``channels`` (``shallow``), a few residual conv blocks keep a
full-resolution path, and the backbone's maps (1x1 laterals, coarse to fine, each step up by pixel shuffle) are
brought to full resolution and fused with it; a feature-level long skip adds ``shallow`` back (SwinIR's
conv_after_body + x). Reconstruction: for denoising / deblurring (scale 1) a 3x3 conv predicts a residual that is
added to the input image (SwinIR denoising, Restormer); for super-resolution (scale 2 / 3 / 4) conv + LeakyReLU,
pixel-shuffle upsampling by the scale and a last conv give the image, with no image-space skip (SwinIR classical SR);
``image_residual=True`` adds the bicubic-upsampled input there too (VDSR's global residual learning), which a model
trained briefly from scratch needs: it starts from bicubic quality instead of from a blank image.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ResBlock", "RestorationHead", "pixel_shuffle_upsampler"]


def pixel_shuffle_upsampler(channels: int, factor: int) -> nn.Sequential:
    """Upsample ``channels`` maps by ``factor`` (a power of 2, or 3): conv to factor^2 x channels + pixel shuffle."""
    if factor >= 2 and factor & (factor - 1) == 0:
        steps = [2] * int(math.log2(factor))
    elif factor == 3:
        steps = [3]
    else:
        raise ValueError(f"pixel-shuffle upsampling supports factors 2^n and 3, got {factor}")
    layers: list[nn.Module] = []
    for r in steps:
        layers += [nn.Conv2d(channels, channels * r * r, 3, padding=1), nn.PixelShuffle(r)]
    return nn.Sequential(*layers)


class ResBlock(nn.Module):
    """EDSR's residual block: conv3x3 - ReLU - conv3x3, plus the input (no normalisation)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        """x: [B, C, H, W] -> [B, C, H, W]."""
        return x + self.conv2(torch.relu(self.conv1(x)))


class RestorationHead(nn.Module):
    """Maps at ``in_strides`` (powers of 2) + the image -> the restored image at ``scale`` x the input size.

    Maps sharing a stride (a plain ViT's several blocks) are summed after their laterals. ``image_residual``
    (default: scale == 1) adds the input image (bicubic-upsampled when scale > 1) to the output; its last conv then
    starts at zero, so an untrained model returns its (upsampled) input.
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        in_strides: Sequence[int],
        channels: int = 64,
        scale: int = 1,
        shallow_blocks: int = 2,
        fuse_blocks: int = 2,
        image_residual: bool | None = None,
    ) -> None:
        super().__init__()
        if len(in_channels) != len(in_strides) or not in_channels:
            raise ValueError(f"RestorationHead: need one channel count per stride, got channels {tuple(in_channels)} "
                             f"and strides {tuple(in_strides)}")
        bad = [s for s in in_strides if s < 1 or s & (s - 1)]
        if bad:
            raise ValueError(f"RestorationHead: strides must be powers of 2, found {bad} in {tuple(in_strides)}")
        if scale < 1:
            raise ValueError(f"RestorationHead: scale must be >= 1, got {scale}")
        self.scale = scale
        self.image_residual = scale == 1 if image_residual is None else image_residual
        self.in_strides = tuple(int(s) for s in in_strides)
        self.levels = sorted(set(self.in_strides), reverse=True)  # coarse to fine

        self.conv_first = nn.Conv2d(3, channels, 3, padding=1)
        self.shallow = nn.Sequential(*[ResBlock(channels) for _ in range(shallow_blocks)])
        self.laterals = nn.ModuleList(nn.Conv2d(c, channels, 1) for c in in_channels)
        # Upsampling from each level to the next finer one (the finest goes to stride 1).
        targets = [*self.levels[1:], 1]
        self.ups = nn.ModuleList(
            pixel_shuffle_upsampler(channels, s // t) if s > t else nn.Identity()
            for s, t in zip(self.levels, targets, strict=True)
        )
        self.fuse = nn.Sequential(
            nn.Conv2d(2 * channels, channels, 3, padding=1),
            *[ResBlock(channels) for _ in range(fuse_blocks)],
            nn.Conv2d(channels, channels, 3, padding=1),
        )
        if scale == 1:
            self.reconstruct = nn.Conv2d(channels, 3, 3, padding=1)
        else:
            self.reconstruct = nn.Sequential(
                nn.Conv2d(channels, channels, 3, padding=1),
                nn.LeakyReLU(inplace=True),
                pixel_shuffle_upsampler(channels, scale),
                nn.Conv2d(channels, 3, 3, padding=1),
            )
        if self.image_residual:
            last = self.reconstruct if isinstance(self.reconstruct, nn.Conv2d) else self.reconstruct[-1]
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)

    def forward(self, features: Sequence[Tensor], image: Tensor) -> Tensor:
        """features: one [B, C_i, H / s_i, W / s_i] map per stride; image: [B, 3, H, W] in [0, 1] -> [B, 3, sH, sW]."""
        if len(features) != len(self.laterals):
            raise ValueError(f"RestorationHead: expected {len(self.laterals)} maps (strides {self.in_strides}), "
                             f"got {len(features)}")
        h, w = image.shape[-2:]
        for f, s in zip(features, self.in_strides, strict=True):
            if f.shape[-2:] != (h // s, w // s):
                raise ValueError(f"RestorationHead: a stride-{s} map of a {h}x{w} image must be {h // s}x{w // s}, "
                                 f"found {tuple(f.shape[-2:])}; pad the image to a multiple of the largest stride")
        first = self.conv_first(image)
        deep: Tensor | None = None
        for level, up in zip(self.levels, self.ups, strict=True):
            lateral = sum(lat(f) for lat, f, s in zip(self.laterals, features, self.in_strides, strict=True)
                          if s == level)
            deep = up(lateral if deep is None else deep + lateral)
        feat = first + self.fuse(torch.cat([self.shallow(first), deep], dim=1))
        out = self.reconstruct(feat)
        if not self.image_residual:
            return out
        if self.scale == 1:
            return image + out
        return F.interpolate(image, scale_factor=self.scale, mode="bicubic", align_corners=False) + out

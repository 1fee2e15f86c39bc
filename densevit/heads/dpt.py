"""DPT decoder (Ranftl et al., 2021) for metric depth, and the depth losses (SILog, gradient matching).

Reassemble: four maps -> 1x1 conv to per-level channels -> resample to strides 4/8/16/32 -> 3x3 conv to the head
width. Four token maps of a plain ViT (one stride) are resampled x4, x2, x1, x0.5; an adapter's stride 4/8/16/32
maps are not resampled; DPT-Hybrid's stem maps at strides 4 and 8 with two token maps at 16 (``HybridViT``) get
x1, x1, x1, x0.5. Fusion runs coarse to fine (RefineNet blocks), the output head predicts one channel at the
input resolution, bounded to (min_depth, max_depth) by a sigmoid as metric DPT heads (Depth Anything) do.
``full_res_output=False`` runs the last two convs at half the input resolution and upsamples the depth logits
instead (a cheaper head for small images; not DPT's).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from densevit.ops.resize import resize

__all__ = [
    "DPT_SIZES",
    "DPTHead",
    "FusionBlock",
    "ResidualConvUnit",
    "bound_depth",
    "gradient_matching_loss",
    "resample_layer",
    "silog_loss",
]

# Per-level reassemble channels and head width of DPT / Depth Anything for ViT-S, ViT-B and ViT-L.
DPT_SIZES: dict[str, dict[str, tuple[int, ...] | int]] = {
    "small": dict(reassemble_channels=(48, 96, 192, 384), features=64),
    "base": dict(reassemble_channels=(96, 192, 384, 768), features=128),
    "large": dict(reassemble_channels=(256, 512, 1024, 1024), features=256),
}

# How much a level of four same-stride token maps is upsampled to reach strides p/4, p/2, p, 2p.
_TOKEN_FACTORS = (4.0, 2.0, 1.0, 0.5)


# --- maths -------------------------------------------------------------------------------------------------


def bound_depth(logits: Tensor, min_depth: float, max_depth: float) -> Tensor:
    """Map unbounded logits to depths in (min_depth, max_depth) with a sigmoid."""
    return min_depth + (max_depth - min_depth) * torch.sigmoid(logits)


def silog_loss(pred: Tensor, target: Tensor, valid: Tensor, variance_focus: float = 0.85) -> Tensor:
    """Scale-invariant log loss of BTS / AdaBins over the valid pixels of the whole batch.

    pred, target: [B, H, W] depths (pred > 0); valid: [B, H, W] bool.
    Returns sqrt(mean(d^2) - variance_focus * mean(d)^2) with d = ln(pred) - ln(target); 0 with no valid pixel.
    """
    if not valid.any():
        return pred.sum() * 0.0  # keeps the graph (and DDP) intact on a batch without ground truth
    d = torch.log(pred[valid].float()) - torch.log(target[valid].float())
    # The clamp keeps sqrt's gradient finite when prediction and target agree up to scale.
    return torch.sqrt(torch.clamp((d**2).mean() - variance_focus * d.mean() ** 2, min=1e-8))


def gradient_matching_loss(pred: Tensor, target: Tensor, valid: Tensor, num_scales: int = 4) -> Tensor:
    """MiDaS-style multi-scale gradient matching on the log-depth residual (scale invariant, so it fits SILog).

    pred, target: [B, H, W]; valid: [B, H, W] bool. At scale k (every 2^k-th pixel) the residual
    r = ln(pred) - ln(target) is differenced along x and y where both pixels are valid; the sum of absolute
    differences over the number of valid pixels is summed over the scales.
    """
    residual = torch.where(valid, torch.log(pred.float()) - torch.log(target.float().clamp(min=1e-6)), 0.0)
    total = pred.new_zeros((), dtype=torch.float32)
    for k in range(num_scales):
        step = 2**k
        r, m = residual[:, ::step, ::step], valid[:, ::step, ::step]
        grad_x = (r[:, :, 1:] - r[:, :, :-1]).abs() * (m[:, :, 1:] & m[:, :, :-1])
        grad_y = (r[:, 1:, :] - r[:, :-1, :]).abs() * (m[:, 1:, :] & m[:, :-1, :])
        total = total + (grad_x.sum() + grad_y.sum()) / m.sum().clamp(min=1)
    return total


# --- modules -----------------------------------------------------------------------------------------------


def resample_layer(channels: int, factor: float) -> nn.Module:
    """DPT's reassemble resampling by ``factor``: 4 / 2 transposed convs, 1 identity, 0.5 a strided 3x3 conv."""
    if factor == 4.0:
        return nn.ConvTranspose2d(channels, channels, kernel_size=4, stride=4)
    if factor == 2.0:
        return nn.ConvTranspose2d(channels, channels, kernel_size=2, stride=2)
    if factor == 1.0:
        return nn.Identity()
    if factor == 0.5:
        return nn.Conv2d(channels, channels, kernel_size=3, stride=2, padding=1)
    raise ValueError(f"resample_layer: factor {factor} is not one of 4, 2, 1, 0.5")


class ResidualConvUnit(nn.Module):
    """RCU(x) = x + conv(ReLU(conv(ReLU(x)))), 3x3 convs with bias."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        """x: [B, C, H, W] -> [B, C, H, W]."""
        return x + self.conv2(F.relu(self.conv1(F.relu(x))))


class FusionBlock(nn.Module):
    """One fusion step: out = prev + RCU(skip); RCU; bilinear upsampling (align_corners=True); 1x1 conv.

    The coarsest block has no skip input (``with_skip=False``) and so no first RCU, which would never be used.
    """

    def __init__(self, channels: int, with_skip: bool = True) -> None:
        super().__init__()
        self.skip_unit = ResidualConvUnit(channels) if with_skip else None
        self.unit = ResidualConvUnit(channels)
        self.out_conv = nn.Conv2d(channels, channels, kernel_size=1)

    def forward(self, x: Tensor, skip: Tensor | None, size: Sequence[int]) -> Tensor:
        """x, skip: [B, C, h, w] -> [B, C, size]; ``size`` is the next finer level's (x2 for the finest)."""
        if self.skip_unit is not None:
            if skip is None:
                raise ValueError("FusionBlock built with_skip=True needs a skip map")
            x = x + self.skip_unit(skip)
        x = self.unit(x)
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=True)
        return self.out_conv(x)


def _input_factors(in_channels: Sequence[int], in_strides: Sequence[int]) -> tuple[float, ...]:
    """Resampling factors per level: token maps of one stride get x4, x2, x1, x0.5; otherwise level i is
    resampled to stride ``in_strides[0] * 2**i`` (DPT-Hybrid's stride 4/8/16/16 maps get x1, x1, x1, x0.5)."""
    strides = tuple(in_strides)
    if len(in_channels) != 4 or len(strides) != 4:
        raise ValueError(f"DPTHead needs 4 input maps, got in_channels {tuple(in_channels)}, strides {strides}; "
                         "give a ViT 4 out_indices, or an adapter 4 levels (no extra pooled level)")
    if len(set(strides)) == 1:
        return _TOKEN_FACTORS
    factors = tuple(s / (strides[0] * 2**i) for i, s in enumerate(strides))
    if all(f in _TOKEN_FACTORS for f in factors):
        return factors
    raise ValueError(f"DPTHead: input strides {strides} are neither one stride (ViT token maps) nor a pyramid "
                     "reachable by resampling x4, x2, x1 or x0.5 from strides s, 2s, 4s, 8s, such as (4, 8, 16, 32)")


class DPTHead(nn.Module):
    """DPT decoder: reassemble 4 maps, fuse coarse to fine, predict a depth map in (min_depth, max_depth).

    ``in_channels`` / ``in_strides`` are the backbone's (or adapter's) declared ``out_channels`` / ``strides``;
    ``reassemble_channels`` and ``features`` (head width) per model size are in ``DPT_SIZES``. With
    ``full_res_output=False`` the output convs run at the fused stride-2 map and the logits are upsampled.
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        in_strides: Sequence[int],
        reassemble_channels: Sequence[int] = (96, 192, 384, 768),
        features: int = 128,
        min_depth: float = 1e-3,
        max_depth: float = 10.0,
        full_res_output: bool = True,
    ) -> None:
        super().__init__()
        factors = _input_factors(in_channels, in_strides)
        if len(reassemble_channels) != 4:
            raise ValueError(f"DPTHead: reassemble_channels needs 4 entries, got {tuple(reassemble_channels)}")
        if not 0 <= min_depth < max_depth:
            raise ValueError(f"DPTHead: need 0 <= min_depth < max_depth, got {min_depth}, {max_depth}")
        self.min_depth = min_depth
        self.max_depth = max_depth
        self.full_res_output = full_res_output
        self.reassemble = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c_in, c, kernel_size=1), resample_layer(c, f))
            for c_in, c, f in zip(in_channels, reassemble_channels, factors, strict=True)
        )
        self.project = nn.ModuleList(
            nn.Conv2d(c, features, kernel_size=3, padding=1, bias=False) for c in reassemble_channels
        )
        # fusion[i] works on level i (0 = finest); the coarsest starts the chain without a skip
        self.fusion = nn.ModuleList(FusionBlock(features, with_skip=i < 3) for i in range(4))
        self.out_conv1 = nn.Conv2d(features, features // 2, kernel_size=3, padding=1)
        self.out_conv2 = nn.Conv2d(features // 2, 32, kernel_size=3, padding=1)
        self.out_conv3 = nn.Conv2d(32, 1, kernel_size=1)

    def forward(self, features: Sequence[Tensor], size: Sequence[int]) -> Tensor:
        """features: 4 maps [B, C_i, h_i, w_i], finest first -> depth [B, 1, *size] in (min_depth, max_depth)."""
        levels = [proj(re(f)) for re, proj, f in zip(self.reassemble, self.project, features, strict=True)]
        # each step upsamples to the next finer level's size (odd sizes do not double evenly), the finest x2
        x = self.fusion[3](levels[3], None, levels[2].shape[-2:])
        for i in (2, 1, 0):
            h, w = levels[i].shape[-2:]
            x = self.fusion[i](x, levels[i], levels[i - 1].shape[-2:] if i else (2 * h, 2 * w))
        x = self.out_conv1(x)
        if self.full_res_output:
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=True)
        logits = self.out_conv3(F.relu(self.out_conv2(x)))
        if not self.full_res_output:
            logits = resize(logits, size)
        return bound_depth(logits, self.min_depth, self.max_depth)

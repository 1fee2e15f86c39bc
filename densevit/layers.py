"""Small layers shared by backbones, adapters and heads."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ConvNormAct", "LayerNorm2d", "NormLayer"]

NormLayer = Callable[[int], nn.Module]


class LayerNorm2d(nn.Module):
    """LayerNorm over the channel dimension of an NCHW map (detectron2 / ConvNeXt style)."""

    def __init__(self, num_channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        """x: [B, C, H, W] -> [B, C, H, W]."""
        return F.layer_norm(x.permute(0, 2, 3, 1), x.shape[1:2], self.weight, self.bias, self.eps).permute(0, 3, 1, 2)


class ConvNormAct(nn.Sequential):
    """Bias-free conv ('same' padding) -> norm -> activation (built in place; none when ``act_layer`` is None).

    The children are ``0`` (conv), ``1`` (norm), ``2`` (activation), as in mmcv's ``ConvModule`` and torchvision's
    ``Conv2dNormActivation``, or ``names`` where a checkpoint names them (LeViT / STViT-R: ``c``, ``bn``).
    ``fan_out_init`` redraws the conv weight kaiming-normal (fan_out, ReLU gain), mmcv's ``ConvModule`` init.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 1,
        stride: int = 1,
        *,
        norm_layer: NormLayer = nn.BatchNorm2d,
        act_layer: Callable[..., nn.Module] | None = nn.ReLU,
        fan_out_init: bool = False,
        names: Sequence[str] | None = None,
    ) -> None:
        conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding=kernel_size // 2, bias=False)
        if fan_out_init:
            nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
        layers = [conv, norm_layer(out_channels)]
        if act_layer is not None:
            layers.append(act_layer(inplace=True))
        names = [str(i) for i in range(len(layers))] if names is None else list(names)
        if len(names) != len(layers):
            raise ValueError(f"ConvNormAct: {len(names)} names {names} for {len(layers)} layers")
        super().__init__(OrderedDict(zip(names, layers, strict=True)))

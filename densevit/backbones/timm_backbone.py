"""Any timm model with ``features_only`` support as a multi-scale backbone (ResNet, ConvNeXt, Swin, ...)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import timm
from timm.layers import Format
from torch import Tensor, nn

from densevit.backbones.interface import ShapeSpec
from densevit.checkpoint import TIMM_PREFIX, load_weights

__all__ = ["TimmBackbone"]


class TimmBackbone(nn.Module):
    """A timm model wrapped with ``features_only=True``; returns NCHW maps at the levels of ``out_indices``.

    ``pretrained=True`` loads the weights timm publishes for ``model_name`` (``<name>.<tag>`` picks a tag) from
    timm's local Hugging Face cache, as ``pretrained="timm:<name>"`` does in a config (see
    ``densevit.checkpoint.resolve_weights``): nothing is downloaded, and a file not in the cache is an error saying
    how to fetch it. Otherwise weights load after construction: ``densevit.checkpoint.load_weights(backbone, path)``
    reads a local checkpoint of the classification model (timm key names, any format ``load_state_dict_file`` reads).
    """

    default_converter: ClassVar[str] = "timm_features"

    def __init__(
        self,
        model_name: str,
        out_indices: Sequence[int] = (1, 2, 3, 4),
        pretrained: bool = False,
        **model_kwargs: Any,
    ) -> None:
        super().__init__()
        try:
            self.body = timm.create_model(
                model_name,
                features_only=True,
                out_indices=tuple(out_indices),
                pretrained=False,  # timm would download; weights come from a local file, through load_weights
                **model_kwargs,
            )
        except IndexError as err:  # timm's own message is a bare "list index out of range"
            raise ValueError(
                f"TimmBackbone: timm '{model_name}' has fewer feature levels than out_indices "
                f"{tuple(out_indices)} asks for (ResNets number them 0-4 from stride 2, ConvNeXt and Swin "
                "0-3 from stride 4)"
            ) from err
        info = self.body.feature_info
        self.output_shapes = tuple(ShapeSpec(c, s) for c, s in zip(info.channels(), info.reduction(), strict=True))
        # Swin and other token models hand out [B, H, W, C] maps.
        self.channels_last = getattr(self.body, "output_fmt", Format.NCHW) == Format.NHWC
        if pretrained:
            load_weights(self, TIMM_PREFIX + model_name)

    def forward(self, x: Tensor) -> list[Tensor]:
        """x: [B, 3, H, W] -> one [B, C_i, H / s_i, W / s_i] map per level."""
        features = self.body(x)
        if self.channels_last:
            features = [f.permute(0, 3, 1, 2) for f in features]
        return features

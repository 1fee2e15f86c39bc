"""Any timm model with ``features_only`` support as a multi-scale backbone (ResNet, ConvNeXt, Swin, ...)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import timm
from timm.layers import Format
from torch import Tensor, nn

from densevit.backbones.interface import ShapeSpec
from densevit.checkpoint import load_pretrained

__all__ = ["TimmBackbone"]


def _to_feature_keys(state_dict: Mapping[str, Tensor], feature_keys: set[str]) -> dict[str, Tensor]:
    """Classification-model keys -> keys of timm's feature wrapper of the same model.

    The wrappers keep the modules but rename them: ``FeatureListNet`` flattens the first Sequential level
    (``stages.0.x`` -> ``stages_0.x``), ``FeatureGetterNet`` nests the model under ``model.``. Keys matching
    neither (heads, unused stages) are kept as they are and end up unexpected.
    """
    out: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        candidates = (key, key.replace(".", "_", 1), "model." + key)
        out[next((c for c in candidates if c in feature_keys), key)] = value
    return out


class TimmBackbone(nn.Module):
    """A timm model wrapped with ``features_only=True``; returns NCHW maps at the levels of ``out_indices``.

    ``pretrained`` is a local checkpoint of the classification model (timm key names, any format that
    ``densevit.checkpoint.load_state_dict_file`` reads); nothing is downloaded.
    """

    def __init__(
        self,
        model_name: str,
        pretrained: str | Path | None = None,
        out_indices: Sequence[int] = (1, 2, 3, 4),
        **model_kwargs: Any,
    ) -> None:
        super().__init__()
        try:
            self.body = timm.create_model(
                model_name,
                features_only=True,
                out_indices=tuple(out_indices),
                pretrained=False,  # weights come only from a local file, below
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
        if pretrained is not None:
            to_features = partial(_to_feature_keys, feature_keys=set(self.body.state_dict()))
            missing, _ = load_pretrained(self.body, pretrained, convert=to_features)
            missing = [k for k in missing if not k.endswith("num_batches_tracked")]
            if missing:
                raise ValueError(
                    f"{pretrained}: {len(missing)} tensors of timm '{model_name}' are not in the checkpoint "
                    f"(e.g. {missing[:3]}); expected a checkpoint of that model with timm key names"
                )

    def forward(self, x: Tensor) -> list[Tensor]:
        """x: [B, 3, H, W] -> one [B, C_i, H / s_i, W / s_i] map per level."""
        features = self.body(x)
        if self.channels_last:
            features = [f.permute(0, 3, 1, 2) for f in features]
        return features

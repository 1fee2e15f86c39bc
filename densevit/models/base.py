"""The task-model shape: a plain ``nn.Module`` with ``loss(batch)`` and ``predict(batch)``.

Task models never see a config or the training framework: ``densevit.engine.model.RunnerModel`` adapts any of
them to mmengine's Runner (data preprocessing, the ``mode`` dispatch), as ``MetricAdapter`` does for evaluators.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from torch import Tensor

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "Batch", "SupportsTTA", "TaskModel"]

# How images reach a task model by default (``densevit.engine.data.DataPreprocessor``): ImageNet's mean and standard
# deviation in 0-255 units subtracted and divided; a model that outputs images (restoration) undoes it with them.
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


@dataclass
class Batch:
    """A preprocessed batch: normalised images padded to one size, and one sample dict per image."""

    inputs: Tensor  # [B, 3, H, W], zero-padded bottom/right
    samples: list[dict]  # per image: metadata (img_shape, ori_shape, scale_factor, ...) and training targets


@runtime_checkable
class TaskModel(Protocol):
    """What every task model offers; ``forward(inputs)`` is the raw network (tensors in, tensors out)."""

    def loss(self, batch: Batch) -> dict[str, Tensor]:
        """Losses (every key starting with ``loss`` is summed by the trainer) and logged scalars."""
        ...

    def predict(self, batch: Batch) -> list[dict]:
        """Per image: its sample dict plus the predictions, in the original image's coordinates."""
        ...


@runtime_checkable
class SupportsTTA(Protocol):
    """A task model whose ``predict`` can average augmented views of each image (flips, scales)."""

    def set_tta(self, enabled: bool) -> str:
        """Switch test-time augmentation on or off; returns what ``predict`` now does, in words."""
        ...

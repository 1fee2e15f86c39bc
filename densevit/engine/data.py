"""Batching: collate dataset items, then normalise, pad and stack them on the model's device."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from mmengine.model import BaseDataPreprocessor
from torch import Tensor

from densevit.models.base import IMAGENET_MEAN, IMAGENET_STD
from densevit.ops.resize import pad_to_size

__all__ = ["DataPreprocessor", "collate"]

# per-pixel targets padded together with the image, and the value their padding takes
_DENSE_TARGETS = {"gt_sem_seg": 255, "gt_depth": 0.0}


def collate(items: Sequence[dict]) -> dict[str, list]:
    """Dataset items ``{"inputs", "data_samples"}`` -> lists of both (images differ in size)."""
    return {"inputs": [it["inputs"] for it in items], "data_samples": [it["data_samples"] for it in items]}


class DataPreprocessor(BaseDataPreprocessor):
    """Move a batch to the device, normalise (RGB, 0-255 statistics), pad bottom/right with zeros and stack.

    ``pad_size`` pads every image to a fixed square (ViTDet pads to 1024); otherwise the batch is padded to its
    largest image rounded up to ``size_divisor``. Dense targets in the samples are padded alike.
    """

    def __init__(
        self,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        pad_size: int | None = None,
        size_divisor: int = 32,
    ) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(-1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(-1, 1, 1), persistent=False)
        self.pad_size = pad_size
        self.size_divisor = size_divisor

    def forward(self, data: dict, training: bool = False) -> dict:
        """data: ``{"inputs": list of uint8 [3, H, W], "data_samples": list}`` -> stacked float batch."""
        data = self.cast_data(data)
        images = data["inputs"]
        if isinstance(images, Tensor):
            images = list(images)
        h, w = self._padded_size(images)
        batch = images[0].new_zeros((len(images), images[0].shape[0], h, w), dtype=torch.float32)
        for i, img in enumerate(images):
            batch[i, :, : img.shape[1], : img.shape[2]] = (img.float() - self.mean) / self.std
        samples = [_pad_dense(s, h, w) for s in data["data_samples"]]
        return {"inputs": batch, "data_samples": samples}

    def _padded_size(self, images: Sequence[Tensor]) -> tuple[int, int]:
        h = max(img.shape[1] for img in images)
        w = max(img.shape[2] for img in images)
        if self.pad_size is not None:
            if h > self.pad_size or w > self.pad_size:
                raise ValueError(f"image of {h}x{w} is larger than pad_size {self.pad_size}; resize it first")
            return self.pad_size, self.pad_size
        d = self.size_divisor
        return -(-h // d) * d, -(-w // d) * d


def _pad_dense(sample: dict, h: int, w: int) -> dict:
    out = dict(sample)
    for key, value in _DENSE_TARGETS.items():
        if key in out:
            out[key] = pad_to_size(out[key], (h, w), value)
    return out

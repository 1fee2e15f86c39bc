"""Encoder-decoder semantic segmentor over any adapter: decode head (+ auxiliary head), whole or slide inference.

Test-time resizing lives here rather than in the dataset, so labels stay at the original resolution: each image
is cropped out of the padded batch, optionally rescaled (``test_scale``, TTA scales, flip), run whole or window
by window, and its logits are resized back to the original image before the argmax.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from densevit.backbones.interface import levels_at, output_shapes
from densevit.models.base import Batch
from densevit.ops.resize import keep_ratio_size, pad_to_multiple, resize, size_pair

__all__ = ["Segmentor", "pixel_accuracy", "seg_cross_entropy", "slide_inference"]

LogitsFn = Callable[[Tensor], Tensor]


def seg_cross_entropy(
    logits: Tensor, target: Tensor, ignore_index: int = 255, class_weight: Tensor | None = None
) -> Tensor:
    """logits [B, K, h, w] (resized to the target), target [B, H, W] -> mean cross-entropy over labelled pixels.

    A batch without a labelled pixel gives a zero loss that still reaches every parameter (no NaN).
    """
    logits = resize(logits, target.shape[-2:])
    if not (target != ignore_index).any():
        return logits.sum() * 0.0
    return F.cross_entropy(logits, target, weight=class_weight, ignore_index=ignore_index)


@torch.no_grad()
def pixel_accuracy(logits: Tensor, target: Tensor, ignore_index: int = 255) -> Tensor:
    """Percentage of labelled pixels whose argmax is right (logged as ``acc_seg``)."""
    pred = resize(logits, target.shape[-2:]).argmax(1)
    valid = target != ignore_index
    return (pred[valid] == target[valid]).float().mean().nan_to_num(0.0) * 100.0


def slide_inference(
    logits_fn: LogitsFn, image: Tensor, crop_size: Sequence[int], stride: Sequence[int], num_classes: int
) -> Tensor:
    """image [B, 3, H, W] -> logits [B, K, H, W] averaged over overlapping windows (mmsegmentation's slide mode).

    Windows of ``crop_size`` (h, w) start every ``stride`` pixels; the last row/column is shifted back to end at
    the border, and a side smaller than the crop is taken whole. ``logits_fn`` maps a window to logits at its size.
    """
    (ch, cw), (sh, sw) = crop_size, stride
    b, _, h, w = image.shape
    rows = max(h - ch + sh - 1, 0) // sh + 1
    cols = max(w - cw + sw - 1, 0) // sw + 1
    total = image.new_zeros((b, num_classes, h, w))
    count = image.new_zeros((1, 1, h, w))
    for r in range(rows):
        for c in range(cols):
            y2, x2 = min(r * sh + ch, h), min(c * sw + cw, w)
            y1, x1 = max(y2 - ch, 0), max(x2 - cw, 0)
            total[:, :, y1:y2, x1:x2] += logits_fn(image[:, :, y1:y2, x1:x2])
            count[:, :, y1:y2, x1:x2] += 1
    return total / count


class Segmentor(nn.Module):
    """Semantic segmentation: adapter -> decode head on the ``decode_strides`` maps (+ auxiliary head on one map).

    ``backbone`` is any adapter (declared ``output_shapes``, list of NCHW maps); heads take the selected maps
    and return logits at the finest one's resolution. Losses: cross-entropy (ignore ``ignore_index``, optional
    ``class_weight``) of the logits resized to the labels, the auxiliary one x ``aux_weight``.

    Inference (``predict``): ``test_mode`` "whole" runs each image at once (padded to ``size_divisor``), "slide"
    runs ``crop_size`` windows every ``crop_stride`` pixels and averages the logits. ``test_scale`` (long, short)
    first rescales each image keeping its ratio (ADE20K: (2048, 512)); ``tta_scales`` multiply it and ``tta_flip``
    adds mirrored views, whose softmax probabilities are averaged. Outputs ``sem_seg`` [H0, W0] long per image.
    """

    def __init__(
        self,
        *,
        backbone: nn.Module,
        decode_head: nn.Module,
        aux_head: nn.Module | None = None,
        # which adapter levels feed the heads
        decode_strides: Sequence[int] = (4, 8, 16, 32),
        aux_stride: int = 16,
        # losses
        aux_weight: float = 0.4,
        ignore_index: int = 255,
        class_weight: Sequence[float] | None = None,
        # inference
        test_mode: str = "whole",
        crop_size: int | Sequence[int] = 512,
        crop_stride: int | Sequence[int] = 341,
        test_scale: Sequence[int] | None = None,
        tta_scales: Sequence[float] = (1.0,),
        tta_flip: bool = False,
        size_divisor: int = 32,
    ) -> None:
        super().__init__()
        if test_mode not in ("whole", "slide"):
            raise ValueError(f"Segmentor: test_mode must be 'whole' or 'slide', got {test_mode!r}")
        self.backbone = backbone
        self.decode_head = decode_head
        self.aux_head = aux_head
        self.num_classes = int(decode_head.num_classes)
        shapes = output_shapes(backbone, "Segmentor")
        channels = tuple(s.channels for s in shapes)
        self.decode_levels = levels_at(shapes, decode_strides, "Segmentor decode_strides")
        _check_head("decode_head", decode_head, tuple(channels[i] for i in self.decode_levels), decode_strides)
        self.aux_level: int | None = None
        if aux_head is not None:
            (self.aux_level,) = levels_at(shapes, [aux_stride], "Segmentor aux_stride")
            _check_head("aux_head", aux_head, (channels[self.aux_level],), (aux_stride,))
            if aux_head.num_classes != self.num_classes:
                raise ValueError(f"Segmentor: aux_head has {aux_head.num_classes} classes, decode_head "
                                 f"{self.num_classes}")
        if class_weight is not None and len(class_weight) != self.num_classes:
            raise ValueError(f"Segmentor: class_weight has {len(class_weight)} entries for {self.num_classes} classes")
        weight = torch.tensor(class_weight, dtype=torch.float32) if class_weight is not None else None
        self.register_buffer("class_weight", weight, persistent=False)
        self.aux_weight = aux_weight
        self.ignore_index = ignore_index
        self.test_mode = test_mode
        self.crop_size = size_pair(crop_size)
        self.crop_stride = size_pair(crop_stride)
        self.test_scale = tuple(test_scale) if test_scale is not None else None
        self.tta_scales = tuple(tta_scales)
        self.tta_flip = tta_flip
        self.size_divisor = size_divisor

    # --- training --------------------------------------------------------------------------------------------

    def forward(self, inputs: Tensor) -> Tensor:
        """inputs [B, 3, H, W] -> decode logits [B, K, h, w] at the finest decoded level's resolution."""
        return self.decode_head(self._select(self.backbone(inputs), self.decode_levels))

    @staticmethod
    def _select(features: Sequence[Tensor], levels: Sequence[int]) -> list[Tensor]:
        return [features[i] for i in levels]

    def loss(self, batch: Batch) -> dict[str, Tensor]:
        """Samples' ``gt_sem_seg`` [H, W] padded like the inputs -> losses and accuracy."""
        target = torch.stack([s["gt_sem_seg"] for s in batch.samples]).long()  # [B, H, W]
        features = self.backbone(batch.inputs)
        logits = self.decode_head(self._select(features, self.decode_levels))
        losses = {"loss_seg": seg_cross_entropy(logits, target, self.ignore_index, self.class_weight)}
        if self.aux_head is not None:
            aux_logits = self.aux_head([features[self.aux_level]])
            losses["loss_aux"] = self.aux_weight * seg_cross_entropy(aux_logits, target, self.ignore_index,
                                                                     self.class_weight)
        losses["acc_seg"] = pixel_accuracy(logits, target, self.ignore_index)
        return losses

    # --- inference -------------------------------------------------------------------------------------------

    def set_tta(self, enabled: bool) -> str:
        """On: mirrored views beside the ``tta_scales`` (mmsegmentation's aug_test: softmax averaged); off: one view
        at scale 1. Returns the views in words."""
        self.tta_flip = enabled
        if not enabled:
            self.tta_scales = (1.0,)
        flip = " and their mirror images" if self.tta_flip else ""
        return f"views at scales {', '.join(f'{s:g}' for s in self.tta_scales)}{flip}"

    def whole_logits(self, image: Tensor) -> Tensor:
        """image [B, 3, h, w] -> logits [B, K, h, w]; padded to ``size_divisor`` so features align with pixels."""
        h, w = image.shape[-2:]
        padded = pad_to_multiple(image, self.size_divisor)
        logits = self.decode_head(self._select(self.backbone(padded), self.decode_levels))
        return resize(logits, padded.shape[-2:])[:, :, :h, :w]

    def image_logits(self, image: Tensor, out_size: Sequence[int]) -> Tensor:
        """image [B, 3, h, w] (padding removed) -> logits (one view) or mean probabilities (TTA) [B, K, *out_size]."""
        views = [(s, f) for s in self.tta_scales for f in ((False, True) if self.tta_flip else (False,))]
        total = None
        for scale, flip in views:
            x = resize(image, self._test_size(image.shape[-2:], scale))
            x = x.flip(-1) if flip else x
            if self.test_mode == "slide":
                logits = slide_inference(self.whole_logits, x, self.crop_size, self.crop_stride, self.num_classes)
            else:
                logits = self.whole_logits(x)
            logits = resize(logits.flip(-1) if flip else logits, out_size)
            if len(views) > 1:
                logits = logits.softmax(1)
            total = logits if total is None else total + logits
        return total / len(views)

    def _test_size(self, size: Sequence[int], scale: float) -> tuple[int, int]:
        h, w = size
        if self.test_scale is None:
            return int(h * scale + 0.5), int(w * scale + 0.5)
        return keep_ratio_size(h, w, (int(self.test_scale[0] * scale), int(self.test_scale[1] * scale)))

    @torch.no_grad()
    def predict(self, batch: Batch) -> list[dict]:
        """Per image: its sample plus ``sem_seg`` [H0, W0] long (and ``gt_sem_seg`` with the batch padding removed).

        Images of equal size run together; memory holds one such group's logits, never more.
        """
        inputs, data_samples = batch.inputs, batch.samples
        groups: dict[tuple, list[int]] = {}
        for i, s in enumerate(data_samples):
            key = (tuple(int(v) for v in s["img_shape"]), tuple(int(v) for v in s["ori_shape"]))
            groups.setdefault(key, []).append(i)
        results: list[dict | None] = [None] * len(data_samples)
        for ((h, w), ori_shape), idx in groups.items():
            logits = self.image_logits(inputs[idx, :, :h, :w], ori_shape)
            for j, i in enumerate(idx):
                sample = dict(data_samples[i])
                if "gt_sem_seg" in sample:
                    sample["gt_sem_seg"] = sample["gt_sem_seg"][:h, :w]
                sample["sem_seg"] = logits[j].argmax(0)
                results[i] = sample
        return results


def _check_head(name: str, head: nn.Module, channels: tuple[int, ...], strides: Sequence[int]) -> None:
    expected = tuple(getattr(head, "in_channels", ()))
    if expected != channels:
        raise ValueError(f"Segmentor: {name} expects input channels {expected}, but the backbone levels at strides "
                         f"{tuple(strides)} have channels {channels}")

"""Monocular metric depth estimation: a plain ViT or an adapter, a DPT head, SILog training, optional flip test."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from densevit.backbones.interface import output_shapes
from densevit.heads.dpt import DPTHead, gradient_matching_loss, silog_loss
from densevit.models.base import Batch
from densevit.ops.resize import resize

__all__ = ["DepthEstimator", "depth_to_original", "flip_within"]


def flip_within(x: Tensor, sizes: Sequence[tuple[int, int]]) -> Tensor:
    """Mirror each map of a padded batch inside its own (h, w) region, so padding stays bottom/right.

    x: [B, ..., H, W]; sizes: one (h, w) per batch entry. Applying it twice gives ``x`` back.
    """
    out = x.clone()
    for i, (h, w) in enumerate(sizes):
        out[i, ..., :h, :w] = x[i, ..., :h, :w].flip(-1)
    return out


def depth_to_original(depth: Tensor, size: Sequence[int], ori_shape: Sequence[int]) -> Tensor:
    """One depth map of a padded batch [H, W] -> [H0, W0]: keep its ``size`` (h, w) region, resize (bilinear)."""
    h, w = (int(v) for v in size)
    h0, w0 = (int(v) for v in ori_shape)
    return resize(depth[None, None, :h, :w], (h0, w0))[0, 0]


class DepthEstimator(nn.Module):
    """Depth from one image: ``backbone`` (a ViT with 4 ``out_indices`` or any 4-level adapter) -> DPT head.

    The default head is built from the backbone's declared ``output_shapes`` with
    ``reassemble_channels``, ``features`` (see ``densevit.heads.dpt.DPT_SIZES``) and ``full_res_output``; another
    head taking ``(features, size)`` can be injected. Ground-truth pixels count when min_depth < gt < max_depth.
    Training loss: ``silog_weight`` x SILog (+ ``grad_weight`` x gradient matching).

    Inference runs on the padded batch, or with ``test_size`` (h, w) on each image resized to it (a model trained
    on downscaled images); ``flip_test`` averages with the prediction of the mirrored image. Test-time resizing
    lives here, not in the dataset, so ``gt_depth`` stays at the original resolution for the evaluator.
    """

    def __init__(
        self,
        *,
        backbone: nn.Module,
        min_depth: float = 1e-3,
        max_depth: float = 10.0,
        # default DPT head
        reassemble_channels: Sequence[int] = (96, 192, 384, 768),
        features: int = 128,
        full_res_output: bool = True,
        head: nn.Module | None = None,
        # losses
        silog_weight: float = 10.0,
        variance_focus: float = 0.85,
        grad_weight: float = 0.0,
        grad_scales: int = 4,
        # test
        test_size: Sequence[int] | None = None,
        flip_test: bool = False,
    ) -> None:
        super().__init__()
        if head is None:
            shapes = output_shapes(backbone, "DepthEstimator")
            channels = tuple(s.channels for s in shapes)
            strides = tuple(s.stride for s in shapes)
            head = DPTHead(channels, strides, reassemble_channels, features, min_depth, max_depth, full_res_output)
        self.backbone = backbone
        self.head = head
        self.min_depth = min_depth
        self.max_depth = max_depth
        self.silog_weight = silog_weight
        self.variance_focus = variance_focus
        self.grad_weight = grad_weight
        self.grad_scales = grad_scales
        self.test_size = (int(test_size[0]), int(test_size[1])) if test_size is not None else None
        self.flip_test = flip_test

    def forward(self, inputs: Tensor) -> Tensor:
        """inputs: [B, 3, H, W] normalised -> depth [B, H, W] in metres (padded batch size)."""
        return self.head(self.backbone(inputs), inputs.shape[-2:])[:, 0]

    def loss(self, batch: Batch) -> dict[str, Tensor]:
        """SILog (and gradient matching) against each sample's ``gt_depth`` [H, W] (padded with 0 = invalid)."""
        missing = [i for i, s in enumerate(batch.samples) if "gt_depth" not in s]
        if missing:
            raise KeyError(f"DepthEstimator: samples {missing} of the batch have no 'gt_depth'")
        pred = self(batch.inputs)  # [B, H, W]
        gt = torch.stack([s["gt_depth"] for s in batch.samples]).to(device=pred.device, dtype=torch.float32)
        if gt.shape != pred.shape:
            raise ValueError(f"DepthEstimator: gt_depth batch {list(gt.shape)} does not match the padded input "
                             f"{list(pred.shape)}; pad ground truth with the images (DataPreprocessor does)")
        valid = (gt > self.min_depth) & (gt < self.max_depth)
        losses = {"loss_silog": self.silog_weight * silog_loss(pred, gt, valid, self.variance_focus)}
        if self.grad_weight > 0:
            losses["loss_grad"] = self.grad_weight * gradient_matching_loss(pred, gt, valid, self.grad_scales)
        return losses

    def set_tta(self, enabled: bool) -> str:
        """On: average with the mirrored image's prediction (DPT's and Monodepth's flip test); returns it in words."""
        self.flip_test = enabled
        return "the image and its mirror image, depths averaged" if enabled else "the image alone"

    def predict(self, batch: Batch) -> list[dict]:
        """Per image: its sample plus ``depth`` [H0, W0] float at the original resolution."""
        inputs, data_samples = batch.inputs, batch.samples
        sizes = [tuple(int(v) for v in s["img_shape"]) for s in data_samples]
        if self.test_size is not None:
            inputs = torch.cat([resize(inputs[i : i + 1, :, :h, :w], self.test_size)
                                for i, (h, w) in enumerate(sizes)])
            sizes = [self.test_size] * len(sizes)
        depth = self(inputs)
        if self.flip_test:
            mirrored = self(flip_within(inputs, sizes))
            depth = 0.5 * (depth + flip_within(mirrored, sizes))
        outs = []
        for d, size, sample in zip(depth.float(), sizes, data_samples, strict=True):
            out = {**sample, "depth": depth_to_original(d, size, sample["ori_shape"])}
            if "gt_depth" in sample:
                h, w = (int(v) for v in sample["img_shape"])
                out["gt_depth"] = sample["gt_depth"][:h, :w]  # the batch padded it
            outs.append(out)
        return outs

"""Mask R-CNN's mask branch as detectron2 trains and pastes it: mask targets, the mask loss, pasting into the image."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import roi_align

__all__ = ["mask_branch_loss", "mask_loss", "mask_targets", "paste_masks"]


def mask_targets(gt_masks: Tensor, rois: Tensor, gt_idxs: Tensor, size: int) -> Tensor:
    """detectron2's mask targets: each RoI's ground-truth mask cropped with aligned RoIAlign, binarised at 0.5.

    gt_masks: [G, H, W] one image's masks; rois: [N, 4] (x1, y1, x2, y2) image pixels; gt_idxs: [N] the mask each
    RoI is matched to -> [N, size, size] float 0 / 1. (torchvision crops with unaligned RoIAlign and keeps the
    fractional values.)
    """
    if len(rois) == 0:
        return rois.new_zeros((0, size, size))
    boxes = torch.cat([gt_idxs[:, None].to(rois.dtype), rois], dim=1)
    crops = roi_align(gt_masks[:, None].to(rois.dtype), boxes, size, 1.0, 0, aligned=True)[:, 0]
    return (crops >= 0.5).to(rois.dtype)


def mask_loss(mask_logits: Tensor, rois: list[Tensor], gt_masks: list[Tensor], gt_labels: list[Tensor],
              gt_idxs: list[Tensor]) -> Tensor:
    """Mask R-CNN's mask loss with ``mask_targets``: binary cross-entropy of each RoI's ground-truth class mask.

    mask_logits: [N, C + 1, S, S] for the positive RoIs of all images; per image: rois [N_i, 4], gt_masks
    [G_i, H, W], gt_labels [G_i] (1-based), gt_idxs [N_i]. Mean over every pixel of every RoI; 0 with no RoI.
    """
    size = mask_logits.shape[-1]
    labels = torch.cat([lab[idx] for lab, idx in zip(gt_labels, gt_idxs, strict=True)])
    targets = torch.cat([mask_targets(m, r, i, size) for m, r, i in zip(gt_masks, rois, gt_idxs, strict=True)])
    if targets.numel() == 0:
        return mask_logits.sum() * 0.0
    logits = mask_logits[torch.arange(len(labels), device=labels.device), labels]
    return F.binary_cross_entropy_with_logits(logits, targets.to(logits.dtype))


def mask_branch_loss(heads: nn.Module, features: dict[str, Tensor], rois: list[Tensor], gt_idxs: list[Tensor],
                    targets: list[dict[str, Tensor]], image_shapes: list[tuple[int, int]]) -> Tensor:
    """``mask_loss`` of the mask branch of ``heads`` (``mask_roi_pool``, ``mask_head``, ``mask_predictor``)."""
    mask_logits = heads.mask_predictor(heads.mask_head(heads.mask_roi_pool(features, rois, image_shapes)))
    return mask_loss(mask_logits, rois, [t["masks"] for t in targets], [t["labels"] for t in targets], gt_idxs)


def paste_masks(masks: Tensor, boxes: Tensor, size: Sequence[int], chunk_pixels: int = 1 << 24) -> Tensor:
    """Per-box mask probabilities resampled into the image as detectron2 pastes them: [N, S, S] -> [N, H, W].

    Each mask spans its box (x1, y1, x2, y2) exactly and is read bilinearly at the image's pixel centres, 0
    outside the box. ``chunk_pixels`` bounds the sampling grid held at once. (torchvision's paste rounds boxes to
    whole pixels and adds one, shifting small masks by up to a pixel.)
    """
    h, w = (int(v) for v in size)
    out = masks.new_zeros((len(masks), h, w))
    xs = torch.arange(w, device=masks.device, dtype=masks.dtype) + 0.5
    ys = torch.arange(h, device=masks.device, dtype=masks.dtype) + 0.5
    step = max(1, chunk_pixels // max(h * w, 1))
    for start in range(0, len(masks), step):
        x1, y1, x2, y2 = boxes[start : start + step].to(masks.dtype).unbind(1)
        # grid_sample coordinates: -1 / +1 are the box's outer edges
        gx = (xs[None] - x1[:, None]) / (x2 - x1).clamp(min=1e-6)[:, None] * 2 - 1  # [n, W]
        gy = (ys[None] - y1[:, None]) / (y2 - y1).clamp(min=1e-6)[:, None] * 2 - 1  # [n, H]
        n = len(gx)
        grid = torch.stack([gx[:, None, :].expand(n, h, w), gy[:, :, None].expand(n, h, w)], dim=3)
        out[start : start + step] = F.grid_sample(masks[start : start + step, None], grid, align_corners=False)[:, 0]
    return out

"""Mask R-CNN (and Faster R-CNN) over any multi-scale feature extractor, on torchvision's detection parts."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from mmengine.model import BaseModel
from torch import Tensor, nn
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.roi_heads import RoIHeads, paste_masks_in_image
from torchvision.models.detection.rpn import AnchorGenerator, RegionProposalNetwork
from torchvision.ops import MultiScaleRoIAlign

from densevit.heads.rcnn import box_head, box_predictor, mask_head, mask_predictor, rpn_head

__all__ = ["MaskRCNN", "detections_to_original"]


class MaskRCNN(BaseModel):
    """Two-stage detector: feature pyramid -> RPN -> RoIAlign box head (-> mask head).

    ``backbone`` is any adapter (list of NCHW maps with ``out_channels``/``strides``); ``neck`` (optional) turns its
    maps into the equal-width pyramid the heads need (ViTDet's simple pyramid needs none). Heads can be injected;
    ``None`` builds ViTDet's defaults. Labels are contiguous, 0..num_classes-1.
    """

    def __init__(
        self,
        *,
        backbone: nn.Module,
        num_classes: int,
        neck: nn.Module | None = None,
        data_preprocessor: nn.Module | dict | None = None,
        with_mask: bool = True,
        # anchors: one size per pyramid level, every aspect ratio on every level
        anchor_sizes: Sequence[float] = (32, 64, 128, 256, 512),
        aspect_ratios: Sequence[float] = (0.5, 1.0, 2.0),
        # RPN
        rpn_fg_iou_thresh: float = 0.7,
        rpn_bg_iou_thresh: float = 0.3,
        rpn_batch_size_per_image: int = 256,
        rpn_positive_fraction: float = 0.5,
        rpn_pre_nms_top_n_train: int = 2000,
        rpn_pre_nms_top_n_test: int = 1000,
        rpn_post_nms_top_n_train: int = 1000,
        rpn_post_nms_top_n_test: int = 1000,
        rpn_nms_thresh: float = 0.7,
        # RoI heads
        roi_levels: int = 4,
        roi_sampling_ratio: int = 0,
        box_fg_iou_thresh: float = 0.5,
        box_bg_iou_thresh: float = 0.5,
        box_batch_size_per_image: int = 512,
        box_positive_fraction: float = 0.25,
        box_reg_weights: Sequence[float] = (10.0, 10.0, 5.0, 5.0),
        box_score_thresh: float = 0.05,
        box_nms_thresh: float = 0.5,
        detections_per_img: int = 100,
        mask_threshold: float = 0.5,
        # injectable heads (None: ViTDet's)
        rpn_head_module: nn.Module | None = None,
        box_head_module: nn.Module | None = None,
        box_predictor_module: nn.Module | None = None,
        mask_head_module: nn.Module | None = None,
        mask_predictor_module: nn.Module | None = None,
    ) -> None:
        super().__init__(data_preprocessor=data_preprocessor)
        self.backbone = backbone
        self.neck = neck
        pyramid = neck if neck is not None else backbone
        channels = set(pyramid.out_channels)
        if len(channels) != 1:
            raise ValueError(f"MaskRCNN needs equal-width pyramid levels, got {pyramid.out_channels}; add a neck")
        if len(anchor_sizes) != len(pyramid.strides):
            raise ValueError(
                f"anchor_sizes has {len(anchor_sizes)} entries but the pyramid has {len(pyramid.strides)} levels"
            )
        width = channels.pop()
        self.level_names = [f"p{s.bit_length() - 1}" for s in pyramid.strides]
        self.num_classes = num_classes
        self.mask_threshold = mask_threshold

        anchors = AnchorGenerator(tuple((s,) for s in anchor_sizes), (tuple(aspect_ratios),) * len(anchor_sizes))
        self.rpn = RegionProposalNetwork(
            anchors,
            rpn_head_module or rpn_head(width, len(aspect_ratios)),
            rpn_fg_iou_thresh,
            rpn_bg_iou_thresh,
            rpn_batch_size_per_image,
            rpn_positive_fraction,
            dict(training=rpn_pre_nms_top_n_train, testing=rpn_pre_nms_top_n_test),
            dict(training=rpn_post_nms_top_n_train, testing=rpn_post_nms_top_n_test),
            rpn_nms_thresh,
        )
        roi_names = self.level_names[:roi_levels]
        mask_pool = MultiScaleRoIAlign(roi_names, output_size=14, sampling_ratio=roi_sampling_ratio)
        self.roi_heads = RoIHeads(
            MultiScaleRoIAlign(roi_names, output_size=7, sampling_ratio=roi_sampling_ratio),
            box_head_module or box_head(width),
            box_predictor_module or box_predictor(1024, num_classes),
            box_fg_iou_thresh,
            box_bg_iou_thresh,
            box_batch_size_per_image,
            box_positive_fraction,
            tuple(box_reg_weights),
            box_score_thresh,
            box_nms_thresh,
            detections_per_img,
            mask_roi_pool=mask_pool if with_mask else None,
            mask_head=(mask_head_module or mask_head(width)) if with_mask else None,
            mask_predictor=(mask_predictor_module or mask_predictor(256, 256, num_classes)) if with_mask else None,
        )

    def extract_features(self, inputs: Tensor) -> OrderedDict[str, Tensor]:
        """inputs: [B, 3, H, W] -> named pyramid maps ``p2``..``p6`` (as many as the pyramid has)."""
        feats = self.backbone(inputs)
        if self.neck is not None:
            feats = self.neck(feats)
        return OrderedDict(zip(self.level_names, feats, strict=True))

    def forward(self, inputs: Tensor, data_samples: list[dict] | None = None, mode: str = "tensor"):
        """mode "loss": dict of losses; "predict": per-image detections in original coordinates; "tensor": maps."""
        feats = self.extract_features(inputs)
        if mode == "tensor":
            return list(feats.values())
        if data_samples is None:
            raise ValueError(f"mode {mode!r} needs data_samples")
        image_sizes = [tuple(int(v) for v in s["img_shape"]) for s in data_samples]
        images = ImageList(inputs, image_sizes)
        if mode == "loss":
            targets = [_targets(s, self.roi_heads.has_mask()) for s in data_samples]
            proposals, rpn_losses = self.rpn(images, feats, targets)
            _, roi_losses = self.roi_heads(feats, proposals, image_sizes, targets)
            return {**rpn_losses, **roi_losses}
        if mode == "predict":
            proposals, _ = self.rpn(images, feats)
            detections, _ = self.roi_heads(feats, proposals, image_sizes)
            return [
                {**sample, **detections_to_original(det, sample, self.mask_threshold)}
                for det, sample in zip(detections, data_samples, strict=True)
            ]
        raise ValueError(f"unknown mode {mode!r}; expected 'loss', 'predict' or 'tensor'")


def _targets(sample: dict, with_mask: bool) -> dict[str, Tensor]:
    """One image's training targets in torchvision's form (label 0 is background there)."""
    target = {"boxes": sample["boxes"].float(), "labels": sample["labels"].long() + 1}
    if with_mask:
        target["masks"] = sample["masks"]
    return target


def detections_to_original(det: dict[str, Tensor], sample: dict, mask_threshold: float = 0.5) -> dict[str, Tensor]:
    """Undo the test resize: boxes to original pixels, mask probabilities pasted into the original image."""
    h0, w0 = (int(v) for v in sample["ori_shape"])
    sx, sy = (float(v) for v in sample["scale_factor"])
    boxes = det["boxes"] / det["boxes"].new_tensor([sx, sy, sx, sy])
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0, w0)
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0, h0)
    out = {"boxes": boxes, "scores": det["scores"], "labels": det["labels"] - 1}
    if "masks" in det:
        if len(boxes):
            masks = paste_masks_in_image(det["masks"], boxes, (h0, w0))[:, 0] >= mask_threshold
        else:
            masks = torch.zeros((0, h0, w0), dtype=torch.bool, device=boxes.device)
        out["masks"] = masks
    return out

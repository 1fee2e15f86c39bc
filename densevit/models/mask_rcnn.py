"""Mask R-CNN, Cascade Mask R-CNN (and Faster R-CNN) over any multi-scale feature extractor, on torchvision's
detection parts."""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torchvision.models.detection.image_list import ImageList

from densevit.backbones.interface import output_shapes
from densevit.heads.mask import paste_masks
from densevit.heads.rcnn import box_head, box_predictor, mask_head, mask_predictor, rpn_head
from densevit.heads.roi_heads import CascadeRoIHeads, MaskRCNNRoIHeads
from densevit.heads.rpn import RPN, UnroundedAnchorGenerator
from densevit.models.base import Batch
from densevit.ops.roi_align import PyramidRoIAlign

__all__ = ["CASCADE_IOU_THRESHOLDS", "CASCADE_REG_WEIGHTS", "MaskRCNN", "detections_to_original"]

# ViTDet's Cascade Mask R-CNN (detectron2): IoU threshold and box-delta weights of each stage
CASCADE_IOU_THRESHOLDS = (0.5, 0.6, 0.7)
CASCADE_REG_WEIGHTS = ((10.0, 10.0, 5.0, 5.0), (20.0, 20.0, 10.0, 10.0), (30.0, 30.0, 15.0, 15.0))


class MaskRCNN(nn.Module):
    """Two-stage detector: feature pyramid -> RPN -> RoIAlign box head (-> mask head).

    ``backbone`` is any adapter (list of NCHW maps, declared ``output_shapes``); ``neck`` (optional) turns its
    maps into the equal-width pyramid the heads need (ViTDet's simple pyramid needs none). Heads can be injected;
    ``None`` builds ViTDet's defaults. Labels are contiguous, 0..num_classes-1.
    RoIs are pooled with ``PyramidRoIAlign`` (``roi_aligned=True``: ViTDet's ROIAlignV2; False: torchvision's).
    ``box_loss_beta`` is the smooth-L1 beta of the RPN and box head losses (0: L1, detectron2's; torchvision 1/9).
    ``cascade=True`` makes it ViTDet's Cascade Mask R-CNN (``CascadeRoIHeads``): one box head and class-agnostic
    predictor per entry of ``cascade_iou_thresholds``, each stage getting its own copy of an injected box head or
    predictor (which must then be class-agnostic: ``box_predictor(..., class_agnostic=True)``).
    """

    def __init__(
        self,
        *,
        backbone: nn.Module,
        num_classes: int,
        neck: nn.Module | None = None,
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
        roi_aligned: bool = True,
        box_fg_iou_thresh: float = 0.5,
        box_bg_iou_thresh: float = 0.5,
        box_batch_size_per_image: int = 512,
        box_positive_fraction: float = 0.25,
        box_reg_weights: Sequence[float] = (10.0, 10.0, 5.0, 5.0),
        box_loss_beta: float = 0.0,
        box_score_thresh: float = 0.05,
        box_nms_thresh: float = 0.5,
        detections_per_img: int = 100,
        mask_threshold: float = 0.5,
        # Cascade R-CNN: one box stage per IoU threshold, each refining the previous stage's boxes; the cascade
        # thresholds and weights replace box_fg_iou_thresh, box_bg_iou_thresh and box_reg_weights
        cascade: bool = False,
        cascade_iou_thresholds: Sequence[float] = CASCADE_IOU_THRESHOLDS,
        cascade_reg_weights: Sequence[Sequence[float]] = CASCADE_REG_WEIGHTS,
        # injectable heads (None: ViTDet's)
        rpn_head_module: nn.Module | None = None,
        box_head_module: nn.Module | None = None,
        box_predictor_module: nn.Module | None = None,
        mask_head_module: nn.Module | None = None,
        mask_predictor_module: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.neck = neck
        shapes = output_shapes(neck if neck is not None else backbone, "MaskRCNN")
        strides = [s.stride for s in shapes]
        channels = {s.channels for s in shapes}
        if len(channels) != 1:
            raise ValueError(f"MaskRCNN needs equal-width pyramid levels, got channels "
                             f"{tuple(s.channels for s in shapes)}; add a neck")
        if len(anchor_sizes) != len(strides):
            raise ValueError(f"anchor_sizes has {len(anchor_sizes)} entries but the pyramid has {len(strides)} levels")
        width = channels.pop()
        self.level_names = [f"p{s.bit_length() - 1}" for s in strides]
        self.num_classes = num_classes
        self.mask_threshold = mask_threshold

        anchors = UnroundedAnchorGenerator(tuple((s,) for s in anchor_sizes),
                                           (tuple(aspect_ratios),) * len(anchor_sizes))
        self.rpn = RPN(
            anchors,
            rpn_head_module or rpn_head(width, len(aspect_ratios)),
            rpn_fg_iou_thresh,
            rpn_bg_iou_thresh,
            rpn_batch_size_per_image,
            rpn_positive_fraction,
            dict(training=rpn_pre_nms_top_n_train, testing=rpn_pre_nms_top_n_test),
            dict(training=rpn_post_nms_top_n_train, testing=rpn_post_nms_top_n_test),
            rpn_nms_thresh,
            box_loss_beta=box_loss_beta,
        )
        roi_names = self.level_names[:roi_levels]

        def roi_pool(size: int) -> PyramidRoIAlign:
            return PyramidRoIAlign(roi_names, strides[:roi_levels], size, roi_sampling_ratio, roi_aligned)

        mask_parts = {}
        if with_mask:
            mask_parts = dict(
                mask_roi_pool=roi_pool(14),
                mask_head=mask_head_module or mask_head(width),
                mask_predictor=mask_predictor_module or mask_predictor(256, 256, num_classes),
            )

        def box_stage(head: nn.Module, predictor: nn.Module, iou: float, iou_low: float, weights: Sequence[float],
                      **mask: nn.Module) -> MaskRCNNRoIHeads:
            return MaskRCNNRoIHeads(
                roi_pool(7),
                head, predictor, iou, iou_low, box_batch_size_per_image, box_positive_fraction, tuple(weights),
                box_score_thresh, box_nms_thresh, detections_per_img, **mask, box_loss_beta=box_loss_beta,
            )

        head = box_head_module or box_head(width)
        self.roi_heads: MaskRCNNRoIHeads | CascadeRoIHeads
        if cascade:
            if len(cascade_iou_thresholds) != len(cascade_reg_weights):
                raise ValueError(f"MaskRCNN: {len(cascade_iou_thresholds)} cascade IoU thresholds but "
                                 f"{len(cascade_reg_weights)} sets of cascade box weights")
            predictor = box_predictor_module or box_predictor(1024, num_classes, class_agnostic=True)
            stages = [
                box_stage(copy.deepcopy(head) if k else head, copy.deepcopy(predictor) if k else predictor,
                          iou, iou, weights)
                for k, (iou, weights) in enumerate(zip(cascade_iou_thresholds, cascade_reg_weights, strict=True))
            ]
            self.roi_heads = CascadeRoIHeads(stages, **mask_parts)
        else:
            predictor = box_predictor_module or box_predictor(1024, num_classes)
            self.roi_heads = box_stage(head, predictor, box_fg_iou_thresh, box_bg_iou_thresh, box_reg_weights,
                                       **mask_parts)

    def extract_features(self, inputs: Tensor) -> OrderedDict[str, Tensor]:
        """inputs: [B, 3, H, W] -> named pyramid maps ``p2``..``p6`` (as many as the pyramid has)."""
        feats = self.backbone(inputs)
        if self.neck is not None:
            feats = self.neck(feats)
        return OrderedDict(zip(self.level_names, feats, strict=True))

    def forward(self, inputs: Tensor) -> list[Tensor]:
        """inputs: [B, 3, H, W] -> the pyramid maps the heads read."""
        return list(self.extract_features(inputs).values())

    def loss(self, batch: Batch) -> dict[str, Tensor]:
        """RPN and RoI-head losses against each sample's ``boxes`` / ``labels`` (/ ``masks``)."""
        feats = self.extract_features(batch.inputs)
        images, image_sizes = _image_list(batch)
        targets = [_targets(s, self.roi_heads.has_mask()) for s in batch.samples]
        proposals, rpn_losses = self.rpn(images, feats, targets)
        _, roi_losses = self.roi_heads(feats, proposals, image_sizes, targets)
        return {**rpn_losses, **roi_losses}

    def predict(self, batch: Batch) -> list[dict]:
        """Per image: its sample plus ``boxes`` / ``scores`` / ``labels`` (/ ``masks``) in original coordinates."""
        feats = self.extract_features(batch.inputs)
        images, image_sizes = _image_list(batch)
        proposals, _ = self.rpn(images, feats)
        detections, _ = self.roi_heads(feats, proposals, image_sizes)
        return [
            {**sample, **detections_to_original(det, sample, self.mask_threshold)}
            for det, sample in zip(detections, batch.samples, strict=True)
        ]


def _image_list(batch: Batch) -> tuple[ImageList, list[tuple[int, int]]]:
    """torchvision's padded-batch wrapper and the images' sizes inside it."""
    image_sizes = [(int(s["img_shape"][0]), int(s["img_shape"][1])) for s in batch.samples]
    return ImageList(batch.inputs, image_sizes), image_sizes


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
            masks = paste_masks(det["masks"][:, 0], boxes, (h0, w0)) >= mask_threshold
        else:
            masks = torch.zeros((0, h0, w0), dtype=torch.bool, device=boxes.device)
        out["masks"] = masks
    return out

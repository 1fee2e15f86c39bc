"""Mask R-CNN, Cascade Mask R-CNN (and Faster R-CNN) over any multi-scale feature extractor, on torchvision's
detection parts."""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.detection._utils import BoxCoder
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.roi_heads import RoIHeads, maskrcnn_inference
from torchvision.models.detection.rpn import AnchorGenerator, RegionProposalNetwork
from torchvision.ops import clip_boxes_to_image, roi_align

from densevit.backbones.interface import output_shapes
from densevit.heads.rcnn import box_head, box_predictor, mask_head, mask_predictor, rpn_head
from densevit.models.base import Batch
from densevit.ops.roi_align import fpn_levels, multilevel_roi_align, multilevel_roi_align_torchvision

__all__ = [
    "RPN",
    "CascadeRoIHeads",
    "MaskRCNN",
    "MaskRCNNRoIHeads",
    "PyramidRoIAlign",
    "detections_to_original",
    "fast_rcnn_loss",
    "mask_loss",
    "mask_targets",
    "paste_masks",
    "refine_proposals",
]

# ViTDet's Cascade Mask R-CNN (detectron2): IoU threshold and box-delta weights of each stage
CASCADE_IOU_THRESHOLDS = (0.5, 0.6, 0.7)
CASCADE_REG_WEIGHTS = ((10.0, 10.0, 5.0, 5.0), (20.0, 20.0, 10.0, 10.0), (30.0, 30.0, 15.0, 15.0))


class PyramidRoIAlign(nn.Module):
    """RoIAlign on a feature pyramid, each box read from the level its size selects (detectron2's ``ROIPooler``).

    Level of a box: floor(4 + log2(sqrt(area) / 224 + 1e-8)), clamped to the pyramid (FPN's rule: a 224 px box
    reads p4). ``aligned=True`` is detectron2's ROIAlignV2 (ViTDet's), whose pixel centres sit at +0.5;
    ``aligned=False`` is torchvision's ``MultiScaleRoIAlign``. Drop-in for the latter inside torchvision's heads:
    (named maps, boxes [N_i, 4] per image, image sizes) -> [sum N_i, C, output_size, output_size]. On the CPU all
    levels go through ``densevit.ops.roi_align`` in one call (same numbers, faster forward + backward there);
    on other devices through torchvision's kernel, level by level.
    """

    def __init__(self, featmap_names: Sequence[str], strides: Sequence[int], output_size: int,
                 sampling_ratio: int = 0, aligned: bool = True) -> None:
        super().__init__()
        levels = [int(s).bit_length() - 1 for s in strides]
        if len(levels) != len(featmap_names) or any(2**lv != s for lv, s in zip(levels, strides, strict=True)) or (
                levels != list(range(levels[0], levels[0] + len(levels)))):
            raise ValueError(f"PyramidRoIAlign needs one consecutive power-of-two stride per map, got strides "
                             f"{tuple(strides)} for maps {tuple(featmap_names)}")
        self.featmap_names = list(featmap_names)
        self.strides = tuple(int(s) for s in strides)
        self.first_level = levels[0]
        self.output_size = output_size
        self.sampling_ratio = sampling_ratio
        self.aligned = aligned

    def forward(self, x: dict[str, Tensor], boxes: list[Tensor], image_shapes: list[tuple[int, int]]) -> Tensor:
        """x: maps by name; boxes: per image [N_i, 4] (x1, y1, x2, y2), image pixels -> pooled [sum N_i, C, S, S]."""
        rois = torch.cat([torch.cat([b.new_full((len(b), 1), i), b], dim=1) for i, b in enumerate(boxes)])
        level = fpn_levels(rois[:, 1:], self.first_level, len(self.strides))
        maps = [x[name] for name in self.featmap_names]
        op = multilevel_roi_align if maps[0].device.type == "cpu" else multilevel_roi_align_torchvision
        return op(maps, rois, level, self.output_size, [1.0 / s for s in self.strides], self.sampling_ratio,
                  self.aligned)


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

        anchors = AnchorGenerator(tuple((s,) for s in anchor_sizes), (tuple(aspect_ratios),) * len(anchor_sizes))
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


# --- box losses ---------------------------------------------------------------------------------------------------


def fast_rcnn_loss(class_logits: Tensor, box_regression: Tensor, labels: list[Tensor],
                   regression_targets: list[Tensor], beta: float = 0.0) -> tuple[Tensor, Tensor]:
    """Box head losses: cross-entropy over the sampled RoIs, and smooth-L1 (``beta`` 0: L1, detectron2's default)
    of the positives' deltas for their class, summed and divided by the number of sampled RoIs.

    class_logits: [N, C + 1]; box_regression: [N, 4 (C + 1)] or [N, 4] (class-agnostic); per image: labels [N_i]
    (0 = background), regression_targets [N_i, 4].
    """
    labels_all = torch.cat(labels)
    targets = torch.cat(regression_targets)
    loss_cls = F.cross_entropy(class_logits, labels_all)
    positive = torch.nonzero(labels_all > 0).squeeze(1)
    deltas = box_regression.reshape(len(box_regression), -1, 4)
    deltas = deltas[positive, labels_all[positive] if deltas.shape[1] > 1 else 0]
    loss_box = F.smooth_l1_loss(deltas, targets[positive], beta=beta, reduction="sum") / max(labels_all.numel(), 1)
    return loss_cls, loss_box


class RPN(RegionProposalNetwork):
    """torchvision's ``RegionProposalNetwork`` with the box loss's smooth-L1 ``beta`` settable (0: L1, detectron2).

    Losses: binary cross-entropy over the sampled anchors; box deltas of the positives, summed and divided by the
    number of sampled anchors (torchvision fixes beta at 1/9).
    """

    def __init__(self, *args, box_loss_beta: float = 0.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.box_loss_beta = box_loss_beta

    def compute_loss(self, objectness: Tensor, pred_bbox_deltas: Tensor, labels: list[Tensor],
                     regression_targets: list[Tensor]) -> tuple[Tensor, Tensor]:
        """objectness [A]; pred_bbox_deltas [A, 4]; per image labels [A_i] (1, 0, -1 ignored) and targets [A_i, 4]."""
        positive, negative = self.fg_bg_sampler(labels)
        positive = torch.nonzero(torch.cat(positive)).squeeze(1)
        sampled = torch.cat([positive, torch.nonzero(torch.cat(negative)).squeeze(1)])
        targets = torch.cat(regression_targets)
        loss_box = F.smooth_l1_loss(pred_bbox_deltas[positive], targets[positive], beta=self.box_loss_beta,
                                    reduction="sum") / max(sampled.numel(), 1)
        loss_objectness = F.binary_cross_entropy_with_logits(objectness.flatten()[sampled], torch.cat(labels)[sampled])
        return loss_objectness, loss_box


# --- masks -------------------------------------------------------------------------------------------------------


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


def _mask_head_loss(heads: nn.Module, features: dict[str, Tensor], rois: list[Tensor], gt_idxs: list[Tensor],
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


class MaskRCNNRoIHeads(RoIHeads):
    """torchvision's ``RoIHeads`` trained with detectron2's losses: ``fast_rcnn_loss`` with a settable smooth-L1
    ``box_loss_beta`` (0: L1) and ``mask_loss`` (aligned, binarised targets). Inference is torchvision's."""

    def __init__(self, *args, box_loss_beta: float = 0.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.box_loss_beta = box_loss_beta

    def forward(
        self,
        features: dict[str, Tensor],
        proposals: list[Tensor],
        image_shapes: list[tuple[int, int]],
        targets: list[dict[str, Tensor]] | None = None,
    ) -> tuple[list[dict[str, Tensor]], dict[str, Tensor]]:
        """Per-image detections (inference) or the box and mask losses (training), as ``RoIHeads.forward``."""
        if not self.training:
            return super().forward(features, proposals, image_shapes)
        if targets is None:
            raise ValueError("MaskRCNNRoIHeads needs targets in training")
        proposals, matched_idxs, labels, regression_targets = self.select_training_samples(proposals, targets)
        box_features = self.box_head(self.box_roi_pool(features, proposals, image_shapes))
        class_logits, box_regression = self.box_predictor(box_features)
        loss_classifier, loss_box_reg = fast_rcnn_loss(class_logits, box_regression, labels, regression_targets,
                                                       self.box_loss_beta)
        losses = {"loss_classifier": loss_classifier, "loss_box_reg": loss_box_reg}
        if self.has_mask():
            positive = [lab > 0 for lab in labels]
            rois = [p[pos] for p, pos in zip(proposals, positive, strict=True)]
            gt_idxs = [m[pos] for m, pos in zip(matched_idxs, positive, strict=True)]
            losses["loss_mask"] = _mask_head_loss(self, features, rois, gt_idxs, targets, image_shapes)
        return [], losses


# --- Cascade R-CNN -----------------------------------------------------------------------------------------------


class CascadeRoIHeads(nn.Module):
    """Cascade R-CNN's box stages, then one mask head: the RoI heads of ViTDet's Cascade Mask R-CNN (detectron2).

    ``stages`` are box-only torchvision ``RoIHeads`` (RoI pool, box head, class-agnostic predictor, IoU matcher and
    box coder each). Training: stage 0 samples the proposals plus the ground truth as Mask R-CNN does; stage k + 1
    takes stage k's regressed boxes (detached) and labels all of them at its own IoU threshold, sampling none and
    adding no ground truth; the stages' losses are summed and the gradient each stage sends into the features is
    scaled by 1 / num_stages. The mask head learns on stage 0's positives. Inference: class probabilities averaged
    over the stages, boxes from the last stage, masks predicted on the final detections.
    """

    def __init__(
        self,
        stages: Sequence[RoIHeads],
        mask_roi_pool: nn.Module | None = None,
        mask_head: nn.Module | None = None,
        mask_predictor: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.stages = nn.ModuleList(stages)
        self.mask_roi_pool = mask_roi_pool
        self.mask_head = mask_head
        self.mask_predictor = mask_predictor

    def has_mask(self) -> bool:
        """Whether the model predicts masks (the interface of torchvision's ``RoIHeads``)."""
        return self.mask_roi_pool is not None and self.mask_head is not None and self.mask_predictor is not None

    def run_stage(
        self, k: int, features: dict[str, Tensor], proposals: list[Tensor], image_shapes: list[tuple[int, int]]
    ) -> tuple[Tensor, Tensor]:
        """Stage k on its proposals: class logits [N, C + 1] and class-agnostic box deltas [N, 4]."""
        stage = self.stages[k]
        x = stage.box_roi_pool(features, proposals, image_shapes)
        # summed stage losses with 1/num_stages of each stage's gradient into the features (detectron2)
        x = _ScaleGradient.apply(x, 1.0 / len(self.stages))
        class_logits, deltas = stage.box_predictor(stage.box_head(x))
        if deltas.shape[-1] != 4:
            raise ValueError(f"CascadeRoIHeads: stage {k} predicts {deltas.shape[-1]} box deltas per box; cascade "
                             "stages regress class-agnostic boxes (box_predictor(..., class_agnostic=True))")
        return class_logits, deltas

    def forward(
        self,
        features: dict[str, Tensor],
        proposals: list[Tensor],
        image_shapes: list[tuple[int, int]],
        targets: list[dict[str, Tensor]] | None = None,
    ) -> tuple[list[dict[str, Tensor]], dict[str, Tensor]]:
        """Per-image detections (inference) or the per-stage and mask losses (training), as ``RoIHeads`` returns."""
        losses: dict[str, Tensor] = {}
        probs: list[Tensor] = []
        if self.training:
            if targets is None:
                raise ValueError("CascadeRoIHeads needs targets in training")
            proposals, matched_idxs, labels, regression_targets = self.stages[0].select_training_samples(
                proposals, targets)
            positive = [lab > 0 for lab in labels]
            mask_rois = [p[pos] for p, pos in zip(proposals, positive, strict=True)]
            mask_gt_idxs = [m[pos] for m, pos in zip(matched_idxs, positive, strict=True)]
        for k, stage in enumerate(self.stages):
            class_logits, deltas = self.run_stage(k, features, proposals, image_shapes)
            if self.training:
                loss_cls, loss_box = fast_rcnn_loss(class_logits, deltas, labels, regression_targets,
                                                    stage.box_loss_beta)
                losses.update({f"loss_classifier_stage{k}": loss_cls, f"loss_box_reg_stage{k}": loss_box})
            else:
                probs.append(class_logits.softmax(-1))
            if k + 1 < len(self.stages):
                proposals = refine_proposals(deltas, proposals, stage.box_coder, image_shapes, drop_empty=self.training)
                if self.training:
                    labels, regression_targets = _label_boxes(self.stages[k + 1], proposals, targets)

        if self.training:
            if self.has_mask():
                losses["loss_mask"] = _mask_head_loss(self, features, mask_rois, mask_gt_idxs, targets, image_shapes)
            return [], losses

        # postprocess_detections takes logits: log of the averaged probabilities softmaxes back to them
        mean_logp = torch.stack(probs).mean(0).log()
        boxes, scores, labels = self.stages[-1].postprocess_detections(
            mean_logp, deltas.repeat(1, mean_logp.shape[-1]), proposals, image_shapes)
        result = [{"boxes": b, "labels": lab, "scores": s} for b, s, lab in zip(boxes, scores, labels, strict=True)]
        if self.has_mask():
            mask_logits = self.mask_predictor(self.mask_head(self.mask_roi_pool(features, boxes, image_shapes)))
            for r, m in zip(result, maskrcnn_inference(mask_logits, labels), strict=True):
                r["masks"] = m
        return result, losses


def refine_proposals(
    deltas: Tensor,
    proposals: list[Tensor],
    box_coder: BoxCoder,
    image_shapes: list[tuple[int, int]],
    drop_empty: bool = False,
) -> list[Tensor]:
    """One cascade stage's class-agnostic ``deltas`` [N, 4] applied to its ``proposals`` (per image [N_i, 4] xyxy):
    the next stage's proposals, detached and clipped to each image; ``drop_empty`` (training) removes boxes that
    clipping emptied. At inference nothing is removed, so the stages' scores stay aligned box by box."""
    boxes = box_coder.decode(deltas.detach(), proposals).reshape(-1, 4)
    refined = []
    for b, shape in zip(boxes.split([len(p) for p in proposals]), image_shapes, strict=True):
        b = clip_boxes_to_image(b, shape)
        if drop_empty:
            b = b[(b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])]
        refined.append(b)
    return refined


def _label_boxes(
    stage: RoIHeads, proposals: list[Tensor], targets: list[dict[str, Tensor]]
) -> tuple[list[Tensor], list[Tensor]]:
    """Every proposal matched at the stage's IoU threshold: class labels (0: background) and regression targets."""
    gt_boxes = [t["boxes"].to(proposals[0].dtype) for t in targets]
    matched_idxs, labels = stage.assign_targets_to_proposals(proposals, gt_boxes, [t["labels"] for t in targets])
    matched = [g[i] if len(g) else g.new_zeros((len(i), 4)) for g, i in zip(gt_boxes, matched_idxs, strict=True)]
    return labels, list(stage.box_coder.encode(matched, proposals))


class _ScaleGradient(torch.autograd.Function):
    """Identity forward; the gradient multiplied by ``scale`` on the way back."""

    @staticmethod
    def forward(ctx, x: Tensor, scale: float) -> Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        return grad * ctx.scale, None

"""RoI heads of the two-stage detectors: Mask R-CNN's (torchvision's, trained with detectron2's losses) and
Cascade R-CNN's box stages followed by one mask head (ViTDet's Cascade Mask R-CNN)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.detection._utils import BoxCoder
from torchvision.models.detection.roi_heads import RoIHeads, maskrcnn_inference
from torchvision.ops import clip_boxes_to_image

from densevit.heads.mask import mask_branch_loss

__all__ = ["CascadeRoIHeads", "MaskRCNNRoIHeads", "fast_rcnn_loss", "refine_proposals"]


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


# --- Mask R-CNN ---------------------------------------------------------------------------------------------------


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
            losses["loss_mask"] = mask_branch_loss(self, features, rois, gt_idxs, targets, image_shapes)
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
                losses["loss_mask"] = mask_branch_loss(self, features, mask_rois, mask_gt_idxs, targets, image_shapes)
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

"""The region proposal network of the two-stage detectors: torchvision's, trained with detectron2's box loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.models.detection.rpn import RegionProposalNetwork

__all__ = ["RPN"]


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

"""The region proposal network of the two-stage detectors: torchvision's, trained with detectron2's box loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.models.detection.rpn import AnchorGenerator, RegionProposalNetwork

__all__ = ["RPN", "UnroundedAnchorGenerator"]


class UnroundedAnchorGenerator(AnchorGenerator):
    """torchvision's ``AnchorGenerator`` with detectron2's cell anchors (``DefaultAnchorGenerator``, offset 0): a
    size-``s`` anchor of aspect ratio ``r`` (height / width) is ``s / sqrt(r)`` wide and ``s * sqrt(r)`` high,
    centred on its grid point, not rounded. torchvision rounds the corners to whole pixels (up to half a pixel
    off), which moves the proposals of a detector trained with detectron2's anchors (ViTDet's released models)."""

    def generate_anchors(self, scales: list[int], aspect_ratios: list[float], dtype: torch.dtype = torch.float32,
                         device: torch.device | str = "cpu") -> Tensor:
        """Cell anchors [len(aspect_ratios) * len(scales), 4] (x1, y1, x2, y2), ratio-major as torchvision orders
        them (one size a level in every densevit detector, so the order is detectron2's too)."""
        sizes = torch.as_tensor(scales, dtype=torch.float64, device=device)
        ratios = torch.as_tensor(aspect_ratios, dtype=torch.float64, device=device)
        half_w = (sizes[None, :] / ratios.sqrt()[:, None]).reshape(-1) / 2
        half_h = (sizes[None, :] * ratios.sqrt()[:, None]).reshape(-1) / 2
        return torch.stack([-half_w, -half_h, half_w, half_h], dim=1).to(dtype)


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

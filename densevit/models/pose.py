"""Top-down pose estimation as ViTPose computes it: person crop -> backbone -> heatmap head -> keypoints.

Training encodes UDP Gaussian heatmaps (sigma 2) from each crop's keypoints and minimises the joint-weighted MSE.
Inference averages the heatmaps with those of the mirrored crop (mirrored back, left/right joints swapped; no
shift: UDP heatmaps flip exactly), decodes them with DARK-UDP, maps the joints back to the original image through
the inverse of the crop's UDP affine and rescores each person as box score x mean of its joint scores above 0.2.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from densevit.heads.pose import joints_mse_loss
from densevit.models.base import Batch
from densevit.ops.keypoints import (
    dark_udp_decode,
    flip_heatmaps,
    heatmap_to_input,
    invert_affine,
    transform_points,
    udp_heatmaps,
    udp_warp_matrix,
)

__all__ = ["TopDownPose", "rescore"]


def rescore(bbox_score: float, keypoint_scores: np.ndarray, threshold: float = 0.2) -> float:
    """mmpose's instance score: box score x mean of the joint scores above ``threshold`` (0 when none is)."""
    confident = keypoint_scores[keypoint_scores > threshold]
    return float(bbox_score) * (float(confident.mean()) if len(confident) else 0.0)


class TopDownPose(nn.Module):
    """Keypoints of one person per crop: ``backbone`` -> ``head`` -> heatmaps [B, K, H / 4, W / 4].

    ``num_keypoints`` and ``flip_pairs`` (left/right joint index pairs) come from the dataset's keypoint set; the
    config writes them once. ``sigma`` is the UDP target's Gaussian, ``blur_kernel`` DARK's blur,
    ``score_threshold`` the joint score above which a joint counts in the instance score.
    """

    # Official ViTPose files (``backbone.*``, ``keypoint_head.*``) load by default; see densevit.checkpoint.
    default_converter: ClassVar[str] = "vitpose"

    def __init__(
        self,
        *,
        backbone: nn.Module,
        head: nn.Module,
        num_keypoints: int,
        flip_pairs: Sequence[Sequence[int]] = (),
        sigma: float = 2.0,
        loss_weight: float = 1.0,
        flip_test: bool = True,
        blur_kernel: int = 11,
        score_threshold: float = 0.2,
    ) -> None:
        super().__init__()
        pairs = [tuple(int(i) for i in p) for p in flip_pairs]
        bad = [p for p in pairs if len(p) != 2 or not all(0 <= i < num_keypoints for i in p) or p[0] == p[1]]
        if bad:
            raise ValueError(f"TopDownPose: flip_pairs {bad} are not pairs of distinct joint indexes in "
                             f"0..{num_keypoints - 1} (num_keypoints {num_keypoints})")
        used = [i for p in pairs for i in p]
        if len(used) != len(set(used)):
            raise ValueError(f"TopDownPose: a joint appears in more than one of the flip_pairs {pairs}")
        self.backbone = backbone
        self.head = head
        self.num_keypoints = num_keypoints
        self.flip_pairs = pairs
        self.sigma = sigma
        self.loss_weight = loss_weight
        self.flip_test = flip_test
        self.blur_kernel = blur_kernel
        self.score_threshold = score_threshold

    def forward(self, inputs: Tensor) -> Tensor:
        """inputs: crops [B, 3, H, W] normalised -> heatmaps [B, K, h, w]."""
        heatmaps = self.head(self.backbone(inputs))
        if heatmaps.shape[1] != self.num_keypoints:
            raise ValueError(f"TopDownPose: the head returns {heatmaps.shape[1]} heatmaps for num_keypoints "
                             f"{self.num_keypoints}")
        return heatmaps

    def _input_size(self, batch: Batch) -> tuple[int, int]:
        """The crops' (w, h); every sample's ``img_shape`` must be the batch's (top-down crops are never padded)."""
        h, w = batch.inputs.shape[-2:]
        odd = [i for i, s in enumerate(batch.samples) if tuple(int(v) for v in s["img_shape"]) != (h, w)]
        if odd:
            raise ValueError(f"TopDownPose: samples {odd} have img_shape "
                             f"{[tuple(batch.samples[i]['img_shape']) for i in odd]} but the batch is {h}x{w}; "
                             "top-down crops must all have the model's input size")
        return int(w), int(h)

    def loss(self, batch: Batch) -> dict[str, Tensor]:
        """Joint-weighted heatmap MSE against UDP targets encoded from each sample's ``keypoints`` [K, 2]."""
        input_size = self._input_size(batch)
        pred = self(batch.inputs)
        heatmap_size = (pred.shape[-1], pred.shape[-2])
        targets, weights = [], []
        for i, sample in enumerate(batch.samples):
            for key in ("keypoints", "keypoints_visible"):
                if key not in sample:
                    raise KeyError(f"TopDownPose: sample {i} ({sample.get('img_path', '?')}) has no {key!r}")
            kpts = np.asarray(sample["keypoints"], dtype=np.float64)
            if kpts.shape != (self.num_keypoints, 2):
                raise ValueError(f"TopDownPose: sample {i} ({sample.get('img_path', '?')}) 'keypoints' has shape "
                                 f"{kpts.shape}, expected ({self.num_keypoints}, 2) (num_keypoints of the model)")
            target, weight = udp_heatmaps(kpts, sample["keypoints_visible"], input_size, heatmap_size, self.sigma)
            targets.append(torch.from_numpy(target))
            weights.append(torch.from_numpy(weight))
        target = torch.stack(targets).to(pred.device)
        weight = torch.stack(weights).to(pred.device)
        return {"loss_heatmap": self.loss_weight * joints_mse_loss(pred, target, weight)}

    def set_tta(self, enabled: bool) -> str:
        """On (ViTPose's default, ``flip_test=True``): heatmaps averaged with the mirrored crop's; returns it in
        words."""
        self.flip_test = enabled
        return "each crop and its mirror image, heatmaps averaged" if enabled else "each crop alone"

    @torch.no_grad()
    def predict_heatmaps(self, inputs: Tensor) -> Tensor:
        """Heatmaps [B, K, h, w], averaged with the mirrored crop's (flipped back, pairs swapped) with flip_test."""
        heatmaps = self(inputs)
        if self.flip_test:
            heatmaps = 0.5 * (heatmaps + flip_heatmaps(self(inputs.flip(-1)), self.flip_pairs))
        return heatmaps

    def predict(self, batch: Batch) -> list[dict]:
        """Per crop: its sample plus ``keypoints`` [K, 2] in original pixels, ``keypoint_scores`` [K], ``score``."""
        input_size = self._input_size(batch)
        for i, sample in enumerate(batch.samples):
            missing = [k for k in ("center", "scale") if k not in sample]
            if missing:
                raise KeyError(f"TopDownPose: sample {i} ({sample.get('img_path', '?')}) has no {missing}: the crop's "
                               "box centre and scale map the joints back to the image")
        heatmaps = self.predict_heatmaps(batch.inputs)
        heatmap_size = (heatmaps.shape[-1], heatmaps.shape[-2])
        coords, maxvals = dark_udp_decode(heatmaps.float(), self.blur_kernel)
        in_crop = heatmap_to_input(coords.double(), input_size, heatmap_size).cpu().numpy()
        scores = maxvals.cpu().numpy().astype(np.float32)
        outs = []
        for points, joint_scores, sample in zip(in_crop, scores, batch.samples, strict=True):
            crop = udp_warp_matrix(sample["center"], sample["scale"], float(sample.get("rotation", 0.0)), input_size)
            keypoints = transform_points(points, invert_affine(crop)).astype(np.float32)
            bbox_score = float(sample.get("bbox_score", 1.0))
            outs.append({**sample, "keypoints": keypoints, "keypoint_scores": joint_scores,
                         "score": rescore(bbox_score, joint_scores, self.score_threshold)})
        return outs

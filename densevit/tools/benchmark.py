"""The workloads tools/benchmark.py and tools/benchmark_table.py time: a config's task model without pretrained
weights, random batches in the form its ``predict`` / ``loss`` read, one training step of the config's optimiser,
and the FLOPs report. Kept out of the scripts so that their ``--help`` answers before torch is imported."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn
from torchvision.models.detection.roi_heads import RoIHeads

from densevit.benchmarking import FLOPS_CONVENTION, NOT_COUNTED, ModuleFlops
from densevit.config import build, load_config, to_plain, without_pretrained
from densevit.engine.optim import build_optim_wrapper
from densevit.models import DepthEstimator, ImageRestorer, MaskRCNN, Segmentor, TopDownPose
from densevit.models.base import Batch

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def build_model(config: str) -> tuple[nn.Module, Any]:
    """The config's task model without pretrained weights, and the config."""
    cfg = load_config(config)
    return build(without_pretrained(to_plain(cfg.model)), "model"), cfg


def _targets(model: nn.Module, h: int, w: int, device: torch.device) -> dict[str, Any]:
    """Random training targets of one image in the form the task model's ``loss`` reads."""
    if isinstance(model, MaskRCNN):
        size = torch.tensor([w, h])
        corner = torch.rand(3, 2) * size / 2
        boxes = torch.cat([corner, corner + size / 4 + 4], 1)  # 3 boxes inside the image, each at least 4 px
        masks = torch.zeros(3, h, w, dtype=torch.uint8)
        for mask, (x1, y1, x2, y2) in zip(masks, boxes.long().tolist(), strict=True):
            mask[y1:y2, x1:x2] = 1
        return {"boxes": boxes.to(device), "labels": torch.randint(model.num_classes, (3,), device=device),
                "masks": masks.to(device)}
    if isinstance(model, Segmentor):
        return {"gt_sem_seg": torch.randint(model.num_classes, (h, w), device=device)}
    if isinstance(model, DepthEstimator):
        return {"gt_depth": torch.empty(h, w, device=device).uniform_(model.min_depth, model.max_depth)}
    if isinstance(model, TopDownPose):
        return {"keypoints": np.random.rand(model.num_keypoints, 2) * (w, h),
                "keypoints_visible": np.ones(model.num_keypoints, np.float32)}
    if isinstance(model, ImageRestorer):
        return {"gt": torch.randint(256, (3, h * model.scale, w * model.scale), dtype=torch.uint8, device=device)}
    raise SystemExit(f"no random targets for {type(model).__name__}; known task models: MaskRCNN, Segmentor, "
                     "DepthEstimator, TopDownPose, ImageRestorer")


def synthetic_batch(model: nn.Module, batch: int, size: tuple[int, int], device: torch.device,
                    targets: bool = False) -> Batch:
    """``batch`` random normalised images of ``size`` (H, W) with the metadata ``predict`` reads (a pose crop's
    box is the whole crop), and random training targets with ``targets``."""
    h, w = size
    samples = []
    for _ in range(batch):
        sample = {"img_shape": (h, w), "ori_shape": (h, w), "scale_factor": (1.0, 1.0),
                  "center": np.array([w / 2, h / 2]), "scale": np.array([w, h], np.float64)}
        samples.append({**sample, **(_targets(model, h, w, device) if targets else {})})
    return Batch(torch.randn(batch, 3, h, w, device=device), samples)


def detect_every_box(model: nn.Module) -> bool:
    """Score threshold 0 in every RoI head (random weights then still fill ``detections_per_img``); whether any."""
    heads = [m for m in model.modules() if isinstance(m, RoIHeads)]
    for head in heads:
        head.score_thresh = 0.0
    return bool(heads)


def record_rois(model: nn.Module) -> dict[str, list[int]]:
    """Hook every box and mask head of ``model``; the returned dict fills with the RoIs of each call."""
    seen: dict[str, list[int]] = {}
    for name, module in model.named_modules():
        if name.endswith(("box_head", "mask_head")):
            module.register_forward_hook(lambda _, args, __, name=name: seen.setdefault(name, []).append(len(args[0])))
    return seen


def training_step(model: nn.Module, cfg: Any, batch: Batch) -> Callable[[], None]:
    """One step of the config's optimiser on ``batch``: ``loss``, the sum of its ``loss*`` terms, backward, step."""
    model.train()
    optim_wrapper = build_optim_wrapper(model, cfg, amp=False)

    def step() -> None:
        losses = model.loss(batch)
        optim_wrapper.update_params(sum(v for k, v in losses.items() if k.startswith("loss")))
    return step


def print_flops(counted: ModuleFlops, rois: dict[str, list[int]], batch: int) -> None:
    """The total, each submodule's share (with its calls when more than one), the RoIs of each head."""
    print(f"FLOPs:        {counted.total / 1e9:.3f} G; {FLOPS_CONVENTION}")
    for name, flops in counted.flops.items():
        if flops:
            calls = f" ({counted.calls[name]} calls)" if counted.calls[name] > 1 else ""
            print(f"{'  ' * (name.count('.') + 1) + name:40s} {flops / 1e9:10.3f} G{calls}")
    for name, counts in rois.items():
        print(f"RoIs:         {name}: {' + '.join(map(str, counts))} (batch of {batch})")
    print(f"not counted:  {NOT_COUNTED}")

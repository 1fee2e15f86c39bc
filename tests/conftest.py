"""Shared fixtures: a tiny demo dataset on disk, a tiny Mask R-CNN config over it, and one short training run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import DefaultSampler, InfiniteSampler
from mmengine.hooks import CheckpointHook, LoggerHook
from torch.optim import AdamW

from densevit.adapters.simple_pyramid import SimpleFeaturePyramid
from densevit.backbones.vit import ViT
from densevit.config import to_dotted
from densevit.datasets.coco import CocoDetection
from densevit.datasets.demo import DEMO_CLASSES, generate_demo_dataset
from densevit.datasets.transforms import detection_test_transforms, detection_train_transforms
from densevit.engine.data import DataPreprocessor
from densevit.evaluation.coco import CocoEvaluator
from densevit.heads.rcnn import box_head, box_predictor, mask_head, mask_predictor, rpn_head
from densevit.models.mask_rcnn import MaskRCNN

ROOT = Path(__file__).resolve().parents[1]
TINY_SIZE = 64  # demo image side and padded input side
WIDTH = 32  # pyramid and head width


@pytest.fixture
def one_thread():
    """Tiny tensors gain nothing from threads, and on a busy 2-core machine OpenMP barriers cost 20x."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory) -> Path:
    """16 train and 4 val images of 64x64 demo shapes, COCO layout (instances only)."""
    return generate_demo_dataset(tmp_path_factory.mktemp("data") / "demo", num_train=16, num_val=4,
                                 image_size=TINY_SIZE, tasks=("instances",), progress=False)


def tiny_heads(width: int = WIDTH, num_classes: int = len(DEMO_CLASSES)) -> dict[str, Any]:
    """ViTDet's R-CNN heads with one conv each and ``width`` channels, for MaskRCNN's injectable head slots."""
    return dict(
        rpn_head_module=dict(type=rpn_head, in_channels=width, num_convs=1),
        box_head_module=dict(type=box_head, in_channels=width, conv_dim=width, num_convs=1, fc_dim=64),
        box_predictor_module=dict(type=box_predictor, in_channels=64, num_classes=num_classes),
        mask_head_module=dict(type=mask_head, in_channels=width, conv_dim=width, num_convs=1),
        mask_predictor_module=dict(type=mask_predictor, in_channels=width, conv_dim=width, num_classes=num_classes),
    )


def tiny_mask_rcnn_config(data_root: Path, *, max_iters: int = 4, checkpoint_interval: int = 2,
                          **top_level: Any) -> dict[str, Any]:
    """configs/quickstart/mask_rcnn_vit_tiny_demo.py narrowed for tests: ViT depth 2 width 64, 64 px, batch 2,
    no workers, no validation during training; ``top_level`` adds or replaces top-level keys."""
    size = TINY_SIZE
    train_set = dict(type=CocoDetection, ann_file=f"{data_root}/annotations/instances_train.json",
                     img_dir=f"{data_root}/train", train=True,
                     transforms=dict(type=detection_train_transforms, size=size, scale_range=(0.8, 1.25)))
    val_set = dict(type=CocoDetection, ann_file=f"{data_root}/annotations/instances_val.json",
                   img_dir=f"{data_root}/val", transforms=dict(type=detection_test_transforms, size=size))
    val_loader = dict(batch_size=2, num_workers=0, sampler=dict(type=DefaultSampler, shuffle=False), dataset=val_set)
    val_evaluator = dict(type=CocoEvaluator, ann_file=f"{data_root}/annotations/instances_val.json")
    cfg = dict(
        model=dict(
            type=MaskRCNN,
            num_classes=len(DEMO_CLASSES),
            backbone=dict(
                type=SimpleFeaturePyramid,
                backbone=dict(type=ViT, img_size=size, embed_dim=64, depth=2, num_heads=2),
                out_channels=WIDTH,
                scale_factors=(4.0, 2.0, 1.0, 0.5),
            ),
            anchor_sizes=(8, 16, 32, 64, 128),
            box_batch_size_per_image=32,
            rpn_pre_nms_top_n_train=200,
            rpn_post_nms_top_n_train=100,
            rpn_pre_nms_top_n_test=100,
            rpn_post_nms_top_n_test=50,
            **tiny_heads(),
        ),
        data_preprocessor=dict(type=DataPreprocessor, pad_size=size),
        train_dataloader=dict(batch_size=2, num_workers=0, persistent_workers=False,
                              sampler=dict(type=InfiniteSampler, shuffle=True), dataset=train_set),
        val_dataloader=val_loader,
        val_evaluator=val_evaluator,
        test_dataloader=val_loader,
        test_evaluator=val_evaluator,
        optimizer=dict(type=AdamW, lr=4e-4, weight_decay=0.05),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),  # no val_interval: no validation while training
        default_hooks=dict(
            checkpoint=dict(type=CheckpointHook, by_epoch=False, interval=checkpoint_interval),
            logger=dict(type=LoggerHook, interval=1),
        ),
        randomness=dict(seed=0),
    )
    cfg.update(top_level)
    return cfg


def write_config(cfg: dict[str, Any], path: Path) -> Path:
    """Dump a config built in Python as a config file (classes become dotted import paths)."""
    Config(to_dotted(cfg)).dump(str(path))
    return path


@pytest.fixture(scope="session")
def tiny_config(demo_root) -> Callable[..., dict[str, Any]]:
    """``tiny_config(**options)``: the tiny Mask R-CNN config over the session's demo data."""

    def make(**options: Any) -> dict[str, Any]:
        return tiny_mask_rcnn_config(demo_root, **options)

    return make


class TrainedRun(NamedTuple):
    config: dict[str, Any]  # the config it was trained with (classes as types)
    config_file: Path  # the same, dumped to a file
    work_dir: Path  # iter_2.pth, iter_4.pth, last_checkpoint
    losses: list[float]  # total loss of iterations 1..4


def train_one_thread(cfg: dict[str, Any], work_dir: Path) -> Any:
    """Build the Runner of ``cfg`` and train it on one thread (runs repeat bit for bit); returns the Runner."""
    from densevit.engine.runner import build_runner

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        runner = build_runner(Config(cfg), work_dir=work_dir)
        runner.train()
    finally:
        torch.set_num_threads(threads)
    return runner


@pytest.fixture(scope="session")
def trained_tiny(tmp_path_factory, tiny_config) -> TrainedRun:
    """Four iterations of the tiny config, with checkpoints after iterations 2 and 4."""
    work_dir = tmp_path_factory.mktemp("trained")
    cfg = tiny_config(experiment_name="trained_tiny")
    runner = train_one_thread(cfg, work_dir)
    losses = runner.message_hub.get_scalar("train/loss").data[0].tolist()
    return TrainedRun(cfg, write_config(cfg, work_dir / "tiny_mask_rcnn.py"), work_dir, losses)

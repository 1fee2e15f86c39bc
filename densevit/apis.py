"""Python API for scripts: build a model from a config and checkpoint, run it on images."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from mmengine.config import Config
from torch import nn

from densevit.config import build, load_config, to_plain
from densevit.datasets.coco import read_image
from densevit.datasets.transforms import apply_instance_transforms
from densevit.engine.data import collate

__all__ = ["inference", "init_model"]


def init_model(config: str | Path | Config, checkpoint: str | Path | None = None, device: str = "cpu") -> nn.Module:
    """Build the config's model, load a checkpoint (weights only) and return it in eval mode.

    The model gets ``class_names``/``cat_ids`` from the checkpoint's dataset meta and ``test_transforms`` from the
    config's test (or val) dataset.
    """
    cfg = config if isinstance(config, Config) else load_config(config)
    model = build(to_plain(cfg.model), "model")
    meta: dict = {}
    if checkpoint is not None:
        ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True)
        state = ckpt.get("state_dict", ckpt)
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise KeyError(f"checkpoint {checkpoint} does not fit the config's model: missing keys {missing[:8]}, "
                           f"unexpected keys {unexpected[:8]}")
        meta = ckpt.get("meta", {}).get("dataset_meta") or {}
    loader = cfg.get("test_dataloader", cfg.get("val_dataloader"))
    dataset_cfg = to_plain(loader["dataset"]) if loader else {}
    model.test_transforms = build(dataset_cfg.get("transforms"), "test_dataloader.dataset.transforms")
    model.class_names = tuple(meta.get("classes", ())) or tuple(str(i) for i in range(getattr(model, "num_classes", 0)))
    model.cat_ids = list(meta.get("cat_ids", range(1, len(model.class_names) + 1)))
    return model.to(device).eval()


@torch.no_grad()
def inference(model: nn.Module, images: Sequence[np.ndarray | str | Path]) -> list[dict]:
    """Run the model on RGB uint8 arrays or image paths; one prediction dict per image, original coordinates."""
    items = []
    for img in images:
        path = None
        if isinstance(img, str | Path):
            path, img = str(img), read_image(img)
        h0, w0 = img.shape[:2]
        if model.test_transforms is not None:
            img, _, _, _ = apply_instance_transforms(model.test_transforms, img, np.zeros((0, 4), np.float32), None)
        h, w = img.shape[:2]
        sample = {"img_id": len(items), "img_path": path, "ori_shape": (h0, w0), "img_shape": (h, w),
                  "scale_factor": (w / w0, h / h0)}
        items.append({"inputs": torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))),
                      "data_samples": sample})
    batch = model.data_preprocessor(collate(items), False)
    return model(**batch, mode="predict")

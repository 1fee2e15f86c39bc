"""Python API for scripts: build a model from a config and checkpoint, run it on images, turn its predictions
into pictures and JSON records.

``init_model`` returns a ``RunnerModel`` (``densevit.engine.model``): the task model as ``.model`` with its data
preprocessor, plus the ``class_names`` / ``cat_ids`` / ``test_transforms`` that scripts need. What differs between
the task models (how an image becomes a model input, how a prediction becomes files) is a ``Task`` of three small
functions per task-model class in ``TASKS``; ``task_of(model)`` picks it. A new task adds its entry there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import albumentations as A
import numpy as np
import torch
from mmengine.config import Config
from torch import nn

from densevit.config import build, load_config, resolve_type, to_plain
from densevit.datasets.io import read_image
from densevit.datasets.transforms import apply_instance_transforms
from densevit.engine.data import collate
from densevit.engine.model import RunnerModel
from densevit.evaluation.coco import detection_results, mask_to_rle
from densevit.models.depth import DepthEstimator
from densevit.models.mask_rcnn import MaskRCNN
from densevit.models.segmentor import Segmentor
from densevit.vis.depth import depth_to_png16, draw_depth
from densevit.vis.detection import draw_detections
from densevit.vis.segmentation import draw_segmentation, sem_seg_to_png

__all__ = ["TASKS", "Task", "inference", "init_model", "task_of"]

DEPTH_PNG_SCALE = 1000.0  # uint16 value per metre in the 16-bit depth PNGs (millimetres, as NYUv2 stores them)


def _numpy(x: torch.Tensor | np.ndarray) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


# --- image -> model input: what the task's test dataset does to an image ----------------------------------------


def instance_input(transforms: A.Compose | None, image: np.ndarray) -> np.ndarray:
    """Detection: the test transforms as CocoDetection applies them (with no boxes to carry along)."""
    if transforms is None:
        return image
    return apply_instance_transforms(transforms, image, np.zeros((0, 4), np.float32), None)[0]


def dense_input(transforms: A.Compose | None, image: np.ndarray) -> np.ndarray:
    """Segmentation / depth: usually the image as it is (the model resizes it); else the image-only transforms."""
    return image if transforms is None else transforms(image=image)["image"]


# --- prediction -> pictures {file name suffix: RGB [H, W, 3] or single-channel array} and JSON records -----------


def detection_pictures(model: nn.Module, image: np.ndarray, pred: dict, score_thr: float) -> dict[str, np.ndarray]:
    """``<stem>.png``: boxes, masks, class names and scores of the detections scoring ``score_thr`` or more."""
    masks = _numpy(pred["masks"]) if "masks" in pred else None
    return {"": draw_detections(image, _numpy(pred["boxes"]), _numpy(pred["labels"]), _numpy(pred["scores"]),
                                model.class_names, masks, score_thr)}


def detection_records(model: nn.Module, pred: dict, image_id: int, file_name: str) -> list[dict]:
    """One COCO result record per detection (box, score, category id, RLE mask), with the image's file name."""
    rles = mask_to_rle(_numpy(pred["masks"])) if "masks" in pred else None
    records = detection_results(image_id, _numpy(pred["boxes"]), _numpy(pred["scores"]), _numpy(pred["labels"]),
                                model.cat_ids, rles)
    return [{**r, "file_name": file_name} for r in records]


def segmentation_pictures(model: nn.Module, image: np.ndarray, pred: dict, score_thr: float) -> dict[str, np.ndarray]:
    """``<stem>_overlay.png``: classes tinted over the image with a legend; ``<stem>_labels.png``: class indices."""
    return {"_overlay": draw_segmentation(image, pred["sem_seg"], model.class_names,
                                          ignore_index=model.model.ignore_index),
            "_labels": sem_seg_to_png(pred["sem_seg"])}


def segmentation_records(model: nn.Module, pred: dict, image_id: int, file_name: str) -> list[dict]:
    """One record per image: its size and the fraction of its pixels given to each class present."""
    labels = _numpy(pred["sem_seg"])
    names = model.class_names
    fractions = {(names[k] if k < len(names) else str(k)): round(count / labels.size, 6)
                 for k, count in enumerate(np.bincount(labels.ravel()).tolist()) if count}
    return [{"image_id": image_id, "file_name": file_name, "height": labels.shape[0], "width": labels.shape[1],
             "class_fractions": fractions}]


def depth_pictures(model: nn.Module, image: np.ndarray, pred: dict, score_thr: float) -> dict[str, np.ndarray]:
    """``<stem>_depth.png``: colour-mapped depth over the model's range with a colour bar; ``<stem>_depth16.png``:
    uint16 millimetres (0 = none)."""
    return {"_depth": draw_depth(pred["depth"], model.model.min_depth, model.model.max_depth),
            "_depth16": depth_to_png16(pred["depth"], DEPTH_PNG_SCALE)}


def depth_records(model: nn.Module, pred: dict, image_id: int, file_name: str) -> list[dict]:
    """One record per image: its size, depth statistics in metres and the 16-bit PNG's values per metre."""
    depth = _numpy(pred["depth"])
    low, mid, high = (round(float(v), 4) for v in np.percentile(depth, (0, 50, 100)))
    return [{"image_id": image_id, "file_name": file_name, "height": depth.shape[0], "width": depth.shape[1],
             "depth_min": low, "depth_median": mid, "depth_max": high, "png16_scale": DEPTH_PNG_SCALE}]


@dataclass(frozen=True)
class Task:
    """How scripts feed one kind of task model and what they write from its predictions."""

    to_input: Callable[[A.Compose | None, np.ndarray], np.ndarray]
    pictures: Callable[[nn.Module, np.ndarray, dict, float], dict[str, np.ndarray]]
    records: Callable[[nn.Module, dict, int, str], list[dict]]


TASKS: dict[type[nn.Module], Task] = {
    MaskRCNN: Task(instance_input, detection_pictures, detection_records),
    Segmentor: Task(dense_input, segmentation_pictures, segmentation_records),
    DepthEstimator: Task(dense_input, depth_pictures, depth_records),
}


def task_of(model: nn.Module) -> Task:
    """The ``Task`` of a task model's class (or its nearest base class in ``TASKS``); a ``RunnerModel``'s inner one."""
    if isinstance(model, RunnerModel):
        model = model.model
    for cls in type(model).__mro__:
        if cls in TASKS:
            return TASKS[cls]
    raise TypeError(f"no inference task for {type(model).__name__}; known models: "
                    f"{', '.join(cls.__name__ for cls in TASKS)}")


# --- the API ---------------------------------------------------------------------------------------------------


def _class_names(meta: dict, dataset_cfg: dict, model: nn.Module) -> tuple[str, ...]:
    """The checkpoint's class names, else the test dataset's (config key or its class's own list), else numbers."""
    names = meta.get("classes") or dataset_cfg.get("classes")
    if not names and "type" in dataset_cfg:
        names = getattr(resolve_type(dataset_cfg["type"], "test_dataloader.dataset.type"), "classes", None)
    if isinstance(names, Sequence) and not isinstance(names, str) and names:
        return tuple(str(n) for n in names)
    return tuple(str(i) for i in range(getattr(model, "num_classes", 0)))


def init_model(config: str | Path | Config, checkpoint: str | Path | None = None,
               device: str = "cpu") -> RunnerModel:
    """Build the config's model and data preprocessor, load a checkpoint (weights only), return them in eval mode.

    The result's ``.model`` is the task model. It gets ``class_names``/``cat_ids`` from the checkpoint's dataset meta
    (class names fall back to the config's test dataset) and ``test_transforms`` from the config's test (or val)
    dataset.
    """
    cfg = config if isinstance(config, Config) else load_config(config)
    task_model = build(to_plain(cfg.model), "model")
    task_of(task_model)  # fail before loading weights for a model no script can run
    model = RunnerModel(task_model, build(to_plain(cfg.get("data_preprocessor")), "data_preprocessor"))
    meta: dict = {}
    if checkpoint is not None:
        ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True)
        state = ckpt.get("state_dict", ckpt)
        missing, unexpected = task_model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise KeyError(f"checkpoint {checkpoint} does not fit the config's model: missing keys {missing[:8]}, "
                           f"unexpected keys {unexpected[:8]}")
        meta = ckpt.get("meta", {}).get("dataset_meta") or {}
    loader = cfg.get("test_dataloader", cfg.get("val_dataloader"))
    dataset_cfg = to_plain(loader["dataset"]) if loader else {}
    model.test_transforms = build(dataset_cfg.get("transforms"), "test_dataloader.dataset.transforms")
    model.class_names = _class_names(meta, dataset_cfg, task_model)
    model.cat_ids = list(meta.get("cat_ids", range(1, len(model.class_names) + 1)))
    return model.to(device).eval()


@torch.no_grad()
def inference(model: RunnerModel, images: Sequence[np.ndarray | str | Path]) -> list[dict]:
    """Run the model on RGB uint8 arrays or image paths; one prediction dict per image, at the original size.

    Detection: ``boxes``/``labels``/``scores``(/``masks``); segmentation: ``sem_seg`` [H, W] class indices;
    depth: ``depth`` [H, W] metres.
    """
    to_input = task_of(model).to_input
    items = []
    for img in images:
        path = None
        if isinstance(img, str | Path):
            path, img = str(img), read_image(img)
        h0, w0 = img.shape[:2]
        img = to_input(getattr(model, "test_transforms", None), img)
        h, w = img.shape[:2]
        sample = {"img_id": len(items), "img_path": path, "ori_shape": (h0, w0), "img_shape": (h, w),
                  "scale_factor": (w / w0, h / h0)}
        items.append({"inputs": torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))),
                      "data_samples": sample})
    batch = model.data_preprocessor(collate(items), False)
    return model(**batch, mode="predict")

"""Python API for scripts: build a model from a config and checkpoint, run it on images, turn its predictions
into pictures (per image, or per video frame) and JSON records.

``init_model`` returns a ``RunnerModel`` (``densevit.engine.model``): the task model as ``.model`` with its data
preprocessor, plus the ``class_names`` / ``cat_ids`` / ``test_transforms`` that scripts need. What differs between
the task models (how an image becomes a model input, how a prediction becomes files) is a ``Task`` of four small
functions per task-model class in ``TASKS``; ``task_of(model)`` picks it. A new task adds its entry there.

Top-down pose runs per person box: ``pose_inference(model, image, boxes)`` crops each box as the pose dataset does
and returns the people's keypoints in image pixels; ``inference`` on a pose model takes the whole image as one
person, and ``detect_people`` finds the boxes with a densevit detector.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import albumentations as A
import numpy as np
import torch
from mmengine.config import Config
from torch import nn

from densevit.checkpoint import ema_note, load_state, read_checkpoint
from densevit.config import build, load_config, resolve_type, to_plain
from densevit.datasets.coco import decode_segmentation
from densevit.datasets.coco_keypoints import DEFAULT_INPUT_SIZE, DEFAULT_PADDING, crop_person
from densevit.datasets.io import read_image
from densevit.datasets.keypoint_info import COCO_KEYPOINTS, KeypointInfo
from densevit.datasets.transforms import apply_instance_transforms
from densevit.engine.data import collate
from densevit.engine.model import RunnerModel
from densevit.evaluation.coco import detection_results, mask_to_rle
from densevit.models.depth import DepthEstimator
from densevit.models.mask_rcnn import MaskRCNN
from densevit.models.pose import TopDownPose
from densevit.models.restoration import ImageRestorer
from densevit.models.segmentor import Segmentor
from densevit.ops.keypoints import box_to_center_scale
from densevit.vis.depth import depth_to_png16, draw_depth
from densevit.vis.detection import draw_detections
from densevit.vis.pose import draw_poses
from densevit.vis.restoration import draw_comparison
from densevit.vis.segmentation import draw_segmentation, label_palette_png

__all__ = [
    "TASKS",
    "Task",
    "detect_people",
    "inference",
    "init_model",
    "keypoint_info_of",
    "pose_inference",
    "task_of",
    "to_rgb",
]

logger = logging.getLogger(__name__)

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
# The first picture is the drawing; ``files`` are the raw prediction as files (what ``tools/test.py --out`` saves).


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


def segmentation_files(model: nn.Module, pred: dict) -> dict[str, bytes]:
    """``<stem>_labels.png``: the class indices as pixel values, with a palette that shows them in colour."""
    return {"_labels": label_palette_png(pred["sem_seg"], len(model.class_names))}


def segmentation_pictures(model: nn.Module, image: np.ndarray, pred: dict,
                          score_thr: float) -> dict[str, np.ndarray | bytes]:
    """``<stem>_overlay.png``: classes tinted over the image (a background class left clear) with a legend, and
    ``segmentation_files``."""
    return {"_overlay": draw_segmentation(image, pred["sem_seg"], model.class_names,
                                          ignore_index=model.model.ignore_index),
            **segmentation_files(model, pred)}


def segmentation_records(model: nn.Module, pred: dict, image_id: int, file_name: str) -> list[dict]:
    """One record per image: its size and the fraction of its pixels given to each class present."""
    labels = _numpy(pred["sem_seg"])
    names = model.class_names
    fractions = {(names[k] if k < len(names) else str(k)): round(count / labels.size, 6)
                 for k, count in enumerate(np.bincount(labels.ravel()).tolist()) if count}
    return [{"image_id": image_id, "file_name": file_name, "height": labels.shape[0], "width": labels.shape[1],
             "class_fractions": fractions}]


def depth_files(model: nn.Module, pred: dict) -> dict[str, np.ndarray]:
    """``<stem>_depth16.png``: uint16 millimetres (0 = none)."""
    return {"_depth16": depth_to_png16(pred["depth"], DEPTH_PNG_SCALE)}


def depth_pictures(model: nn.Module, image: np.ndarray, pred: dict, score_thr: float) -> dict[str, np.ndarray]:
    """``<stem>_depth.png``: colour-mapped depth over the model's range with a colour bar, and ``depth_files``."""
    return {"_depth": draw_depth(pred["depth"], model.model.min_depth, model.model.max_depth),
            **depth_files(model, pred)}


def depth_records(model: nn.Module, pred: dict, image_id: int, file_name: str) -> list[dict]:
    """One record per image: its size, depth statistics in metres and the 16-bit PNG's values per metre."""
    depth = _numpy(pred["depth"])
    low, mid, high = (round(float(v), 4) for v in np.percentile(depth, (0, 50, 100)))
    return [{"image_id": image_id, "file_name": file_name, "height": depth.shape[0], "width": depth.shape[1],
             "depth_min": low, "depth_median": mid, "depth_max": high, "png16_scale": DEPTH_PNG_SCALE}]


def restoration_files(model: nn.Module, pred: dict) -> dict[str, np.ndarray]:
    """``<stem>_restored.png``: the restored image at full resolution."""
    return {"_restored": _numpy(pred["restored"]).transpose(1, 2, 0)}


def restoration_pictures(model: nn.Module, image: np.ndarray, pred: dict, score_thr: float) -> dict[str, np.ndarray]:
    """``restoration_files``, and ``<stem>_compare.png``: input | restored with a zoomed crop of each where they
    differ most."""
    files = restoration_files(model, pred)
    return {**files, "_compare": draw_comparison(image, files["_restored"])}


def restoration_records(model: nn.Module, pred: dict, image_id: int, file_name: str) -> list[dict]:
    """One record per image: input and output sizes and the scale."""
    h, w = pred["img_shape"]
    _, out_h, out_w = pred["restored"].shape
    return [{"image_id": image_id, "file_name": file_name, "input_height": int(h), "input_width": int(w),
             "height": int(out_h), "width": int(out_w), "scale": model.model.scale}]


def pose_input(transforms: A.Compose | None, image: np.ndarray) -> np.ndarray:
    """Pose: the image as it is; the person crops are cut from it per box (``pose_inference``)."""
    return image


def keypoint_info_of(model: nn.Module) -> KeypointInfo:
    """A pose model's keypoint set: the checkpoint's dataset meta, else COCO's for 17 joints, else bare names."""
    meta = getattr(model, "dataset_meta", {}) or {}
    if meta.get("keypoint_names"):
        return KeypointInfo(names=meta["keypoint_names"], flip_pairs=meta.get("flip_pairs", ()),
                            skeleton=meta.get("skeleton", ()), sigmas=meta["sigmas"],
                            upper_body=meta.get("upper_body", ()))
    task_model = model.model if isinstance(model, RunnerModel) else model
    k = task_model.num_keypoints
    if k == COCO_KEYPOINTS.num_keypoints:
        return COCO_KEYPOINTS
    return KeypointInfo(names=tuple(f"joint_{i}" for i in range(k)), flip_pairs=task_model.flip_pairs, skeleton=(),
                        sigmas=(1.0,) * k)


def pose_pictures(model: nn.Module, image: np.ndarray, pred: dict, score_thr: float) -> dict[str, np.ndarray]:
    """``<stem>.png``: each person's skeleton (joints and limbs coloured by side), box and score."""
    info = keypoint_info_of(model)
    return {"": draw_poses(image, pred["keypoints"], pred["keypoint_scores"], info.skeleton, info.sides,
                           pred["scores"], pred["boxes"], score_thr=score_thr)}


def pose_records(model: nn.Module, pred: dict, image_id: int, file_name: str) -> list[dict]:
    """One COCO keypoint result per person (x, y, score per joint; the instance score), with its box and file."""
    cat_id = model.cat_ids[0] if getattr(model, "cat_ids", None) else 1
    return [{"image_id": image_id, "category_id": cat_id,
             # float64 before rounding: a float32 342.609 would be written as 342.6090087890625
             "keypoints": np.concatenate([k, s[:, None]], 1).astype(np.float64).ravel().round(3).tolist(),
             "score": float(score),
             "bbox": [round(float(v), 2) for v in box], "file_name": file_name}
            for k, s, score, box in zip(_numpy(pred["keypoints"]), _numpy(pred["keypoint_scores"]),
                                        _numpy(pred["scores"]), _numpy(pred["boxes"]), strict=True)]


# --- prediction -> one video frame: RGB [H', W', 3] whose size depends only on the frame's size ------------------


def detection_frame(model: nn.Module, image: np.ndarray, pred: dict, score_thr: float) -> np.ndarray:
    """The detection picture (boxes, masks, names, scores) at the frame's size."""
    return detection_pictures(model, image, pred, score_thr)[""]


def segmentation_frame(model: nn.Module, image: np.ndarray, pred: dict, score_thr: float) -> np.ndarray:
    """The classes tinted over the frame, without the legend (it lists the classes present: its size would change)."""
    return draw_segmentation(image, pred["sem_seg"], model.class_names, ignore_index=model.model.ignore_index,
                             legend=False)


def depth_frame(model: nn.Module, image: np.ndarray, pred: dict, score_thr: float) -> np.ndarray:
    """Colour-mapped depth over the model's range with its colour bar (a fixed scale, so frames compare)."""
    return draw_depth(pred["depth"], model.model.min_depth, model.model.max_depth)


def restoration_frame(model: nn.Module, image: np.ndarray, pred: dict, score_thr: float) -> np.ndarray:
    """Input | restored side by side, without the zoomed crops (where they sit would jump from frame to frame)."""
    return draw_comparison(image, restoration_files(model, pred)["_restored"], zoom=False)


def pose_frame(model: nn.Module, image: np.ndarray, pred: dict, score_thr: float) -> np.ndarray:
    """The skeleton picture (joints, limbs, boxes, scores) at the frame's size."""
    return pose_pictures(model, image, pred, score_thr)[""]


# --- a test sample's ground truth in the prediction's form, drawn beside it (``tools/test.py --show-dir``) --------


def detection_truth(sample: dict, dataset: Any) -> dict:
    """The image's objects as ``CocoDetection`` keeps them (crowds and tiny boxes left out), with score 1."""
    anns = dataset.anns[int(sample["img_id"])]
    h0, w0 = (int(v) for v in sample["ori_shape"])
    truth = {"boxes": np.array([[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in anns)],
                               np.float32).reshape(-1, 4),
             "labels": np.array([a["label"] for a in anns], np.int64), "scores": np.ones(len(anns))}
    if dataset.with_mask:
        truth["masks"] = np.stack([decode_segmentation(a["segmentation"], h0, w0) for a in anns]) if anns else \
            np.zeros((0, h0, w0), np.uint8)
    return truth


def segmentation_truth(sample: dict, dataset: Any) -> dict:
    """The label map (``ignore_index`` pixels stay untinted)."""
    return {"sem_seg": sample["gt_sem_seg"]}


def depth_truth(sample: dict, dataset: Any) -> dict:
    """The depth map; pixels without depth (0) are drawn black."""
    depth = _numpy(sample["gt_depth"]).astype(np.float32)
    return {"depth": np.where(depth > 0, depth, np.nan)}


def restoration_truth(sample: dict, dataset: Any) -> dict:
    """The clean image."""
    return {"restored": sample["gt"]}


@dataclass(frozen=True)
class Task:
    """How scripts feed one kind of task model and what they write from its predictions.

    ``frame`` draws a video frame's picture; ``predict`` (optional) replaces the batched whole-image path of
    ``inference`` for one image. ``files`` are the raw prediction as pictures (None where the records are the raw
    format: COCO results); ``truth`` gives a test sample's ground truth in the prediction's form (from the sample,
    or the test dataset), so that the same drawing shows both (None: not drawn).
    """

    to_input: Callable[[A.Compose | None, np.ndarray], np.ndarray]
    pictures: Callable[[nn.Module, np.ndarray, dict, float], dict[str, np.ndarray | bytes]]  # arrays, or PNG bytes
    records: Callable[[nn.Module, dict, int, str], list[dict]]
    frame: Callable[[nn.Module, np.ndarray, dict, float], np.ndarray]
    predict: Callable[[RunnerModel, np.ndarray], dict] | None = None
    files: Callable[[nn.Module, dict], dict[str, np.ndarray | bytes]] | None = None
    truth: Callable[[dict, Any], dict] | None = None


TASKS: dict[type[nn.Module], Task] = {
    MaskRCNN: Task(instance_input, detection_pictures, detection_records, detection_frame, truth=detection_truth),
    Segmentor: Task(dense_input, segmentation_pictures, segmentation_records, segmentation_frame,
                    files=segmentation_files, truth=segmentation_truth),
    DepthEstimator: Task(dense_input, depth_pictures, depth_records, depth_frame, files=depth_files,
                         truth=depth_truth),
    ImageRestorer: Task(dense_input, restoration_pictures, restoration_records, restoration_frame,
                        files=restoration_files, truth=restoration_truth),
    # a test sample is one person crop: an image's people are spread over samples, so nothing is drawn per sample
    TopDownPose: Task(pose_input, pose_pictures, pose_records, pose_frame,
                      lambda model, image: pose_inference(model, image)),
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
    (class names fall back to the config's test dataset), ``test_transforms`` from the config's test (or val)
    dataset, and keeps that dataset's config (``test_dataset_cfg``: a pose model's crop size) and the checkpoint's
    ``dataset_meta`` (a pose model's keypoint set). A checkpoint of a run with an EMA of its weights holds the
    average as its ``state_dict``, so that is what is loaded; ``weights_note`` then says so (None otherwise).
    """
    cfg = config if isinstance(config, Config) else load_config(config)
    task_model = build(to_plain(cfg.model), "model")
    task_of(task_model)  # fail before loading weights for a model no script can run
    model = RunnerModel(task_model, build(to_plain(cfg.get("data_preprocessor")), "data_preprocessor"))
    meta: dict = {}
    note = None
    if checkpoint is not None:
        ckpt = read_checkpoint(checkpoint)
        load_state(task_model, ckpt.get("state_dict", ckpt), str(checkpoint), "densevit")  # strict: names misfits
        meta = ckpt.get("meta", {}).get("dataset_meta") or {}
        if note := ema_note(ckpt):
            logger.info("%s: %s", checkpoint, note)
    loader = cfg.get("test_dataloader", cfg.get("val_dataloader"))
    dataset_cfg = to_plain(loader["dataset"]) if loader else {}
    model.test_transforms = build(dataset_cfg.get("transforms"), "test_dataloader.dataset.transforms")
    model.test_dataset_cfg = dataset_cfg
    model.dataset_meta = meta
    model.class_names = _class_names(meta, dataset_cfg, task_model)
    model.cat_ids = list(meta.get("cat_ids", range(1, len(model.class_names) + 1)))
    model.weights_note = note
    return model.to(device).eval()


ImageInput = Union[np.ndarray, str, Path, "PIL.Image.Image"]  # noqa: F821 - PIL is imported only when given


def _is_pil(image: object) -> bool:
    """A PIL image, recognised without importing PIL."""
    return type(image).__module__.startswith("PIL.")


def to_rgb(image: ImageInput, channel_order: str = "rgb") -> np.ndarray:
    """An image path, PIL image or uint8 array -> RGB uint8 [H, W, 3].

    Arrays are taken in ``channel_order`` ("rgb", or "bgr" for ``cv2.imread``'s); grayscale [H, W] / [H, W, 1] is
    repeated to three channels and an alpha channel dropped.
    """
    if channel_order not in ("rgb", "bgr"):
        raise ValueError(f"channel_order must be 'rgb' or 'bgr', got {channel_order!r}")
    if isinstance(image, str | Path):
        return read_image(image)
    if _is_pil(image):
        return np.asarray(image.convert("RGB"))
    if not isinstance(image, np.ndarray):
        raise TypeError(f"expected an image path, a PIL image or a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise TypeError(f"expected a uint8 image array (0-255), got {image.dtype}; convert it first, e.g. "
                        "(x * 255).round().astype(np.uint8) for floats in [0, 1]")
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        return np.repeat(image.reshape(*image.shape[:2], 1), 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(f"expected an image array [H, W], [H, W, 3] or [H, W, 4], got shape {list(image.shape)}")
    image = image[:, :, :3]
    return np.ascontiguousarray(image[:, :, ::-1] if channel_order == "bgr" else image)


@torch.no_grad()
def inference(model: RunnerModel, images: ImageInput | Sequence[ImageInput], *, channel_order: str = "rgb",
              batch_size: int = 8) -> list[dict]:
    """Run the model on one image or a list (paths, PIL images or uint8 arrays in ``channel_order``), ``batch_size``
    at a time; one prediction dict per image, at the original size.

    Detection: ``boxes``/``labels``/``scores``(/``masks``); segmentation: ``sem_seg`` [H, W] class indices;
    depth: ``depth`` [H, W] metres; restoration: ``restored`` uint8 [3, scale * H, scale * W];
    pose: the whole image as one person (``pose_inference``'s keys).
    """
    if isinstance(images, str | Path | np.ndarray) or _is_pil(images):
        images = [images]
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    task = task_of(model)
    paths = [str(img) if isinstance(img, str | Path) else None for img in images]
    images = [to_rgb(img, channel_order) for img in images]
    if task.predict is not None:
        return [task.predict(model, img) for img in images]
    results: list[dict] = []
    for start in range(0, len(images), batch_size):
        results += _predict_batch(model, task, images[start : start + batch_size], paths[start : start + batch_size],
                                  first_id=start)
    return results


def _predict_batch(model: RunnerModel, task: Task, images: list[np.ndarray], paths: list[str | None],
                   first_id: int) -> list[dict]:
    items = []
    for img, path in zip(images, paths, strict=True):
        h0, w0 = img.shape[:2]
        img = task.to_input(getattr(model, "test_transforms", None), img)
        h, w = img.shape[:2]
        sample = {"img_id": first_id + len(items), "img_path": path, "ori_shape": (h0, w0), "img_shape": (h, w),
                  "scale_factor": (w / w0, h / h0)}
        items.append({"inputs": torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))),
                      "data_samples": sample})
    batch = model.data_preprocessor(collate(items), False)
    return model(**batch, mode="predict")


@torch.no_grad()
def pose_inference(model: RunnerModel, image: ImageInput, boxes: np.ndarray | None = None,
                   box_scores: np.ndarray | None = None, batch_size: int = 32, channel_order: str = "rgb") -> dict:
    """Top-down pose of the people in ``boxes`` [N, 4] (x, y, w, h in image pixels; None: the whole image).

    Each box is cropped as the pose dataset crops it for evaluation (the config's test ``input_size`` and
    ``padding``, the UDP affine). Returns ``boxes`` [N, 4], ``box_scores`` [N], ``keypoints`` [N, K, 2] in image
    pixels, ``keypoint_scores`` [N, K] and ``scores`` [N] (box score x mean confident joint score).
    """
    path = str(image) if isinstance(image, str | Path) else None
    image = to_rgb(image, channel_order)
    h0, w0 = image.shape[:2]
    boxes = np.array([[0.0, 0.0, w0, h0]]) if boxes is None else np.asarray(boxes, np.float64).reshape(-1, 4)
    box_scores = np.ones(len(boxes)) if box_scores is None else np.asarray(box_scores, np.float64).reshape(-1)
    if len(box_scores) != len(boxes):
        raise ValueError(f"pose_inference: {len(boxes)} boxes but {len(box_scores)} box scores")
    dataset_cfg = getattr(model, "test_dataset_cfg", {}) or {}
    h, w = (int(v) for v in dataset_cfg.get("input_size", DEFAULT_INPUT_SIZE))
    padding = float(dataset_cfg.get("padding", DEFAULT_PADDING))
    items = []
    for i, (box, box_score) in enumerate(zip(boxes, box_scores, strict=True)):
        center, scale = box_to_center_scale(box, aspect_ratio=w / h, padding=padding)
        crop, _ = crop_person(image, center, scale, 0.0, (h, w))
        sample = {"img_id": 0, "det_id": i, "img_path": path, "ori_shape": (h0, w0), "img_shape": (h, w),
                  "center": center, "scale": scale, "rotation": 0.0, "bbox": box.tolist(),
                  "bbox_score": float(box_score)}
        items.append({"inputs": torch.from_numpy(np.ascontiguousarray(crop.transpose(2, 0, 1))),
                      "data_samples": sample})
    preds = []
    for start in range(0, len(items), batch_size):
        batch = model.data_preprocessor(collate(items[start:start + batch_size]), False)
        preds += model(**batch, mode="predict")
    k = model.model.num_keypoints
    return {
        "boxes": boxes,
        "box_scores": box_scores,
        "keypoints": np.stack([_numpy(p["keypoints"]) for p in preds]) if preds else np.zeros((0, k, 2)),
        "keypoint_scores": np.stack([_numpy(p["keypoint_scores"]) for p in preds]) if preds else np.zeros((0, k)),
        "scores": np.array([float(p["score"]) for p in preds]),
    }


def detect_people(detector: RunnerModel, image: np.ndarray | str | Path, class_name: str = "person",
                  score_thr: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """Boxes [N, 4] (x, y, w, h) and scores [N] of a densevit detector's ``class_name`` detections scoring at least
    ``score_thr``."""
    names = list(detector.class_names)
    if class_name not in names:
        raise ValueError(f"detector classes {names} have no {class_name!r}; pass one of them as the person class")
    pred = inference(detector, [image])[0]
    boxes, scores, labels = _numpy(pred["boxes"]), _numpy(pred["scores"]), _numpy(pred["labels"])
    keep = (labels == names.index(class_name)) & (scores >= score_thr)
    boxes = boxes[keep].astype(np.float64)
    boxes[:, 2:] -= boxes[:, :2]
    return boxes, scores[keep].astype(np.float64)

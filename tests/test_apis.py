"""init_model / inference and tools/infer.py for every task model: original-size outputs and the files written."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from paths import SHARED_DATA, needs_sample

from densevit.apis import inference, init_model, keypoint_info_of, pose_inference, task_of
from densevit.config import build, load_config, to_plain
from densevit.datasets.ade20k import ADE20K, ADE20K_CLASSES, SegFolderDataset, read_label
from densevit.datasets.coco_keypoints import CocoKeypoints
from densevit.datasets.keypoint_info import COCO_KEYPOINTS
from densevit.engine.data import collate
from densevit.models.depth import DepthEstimator
from densevit.models.segmentor import Segmentor

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "configs" / "quickstart"
SEG_CONFIG = QUICKSTART / "upernet_vit_tiny_demo.py"
DEPTH_CONFIG = QUICKSTART / "dpt_vit_tiny_demo.py"
DET_CONFIG = QUICKSTART / "mask_rcnn_vit_tiny_demo.py"
RESTORE_CONFIG = QUICKSTART / "restoration_hybrid_vit_tiny_demo.py"
SR_CONFIG = QUICKSTART / "sr_x2_hybrid_vit_tiny_demo.py"
POSE_CONFIG = QUICKSTART / "topdown_pose_hybrid_vit_tiny_demo.py"
PERSON_MINI = SHARED_DATA / "coco_person_mini"
POSE_META = {"classes": ["person"], "cat_ids": [1], "keypoint_names": list(COCO_KEYPOINTS.names),
             "flip_pairs": [list(p) for p in COCO_KEYPOINTS.flip_pairs],
             "skeleton": [list(p) for p in COCO_KEYPOINTS.skeleton], "sigmas": list(COCO_KEYPOINTS.sigmas),
             "upper_body": list(COCO_KEYPOINTS.upper_body)}
SHAPES = ((100, 150), (72, 60))  # neither is the quickstart test size (128 x 128) nor square


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def save_checkpoint(config: Path, path: Path, dataset_meta: dict) -> Path:
    """Build the config's model with its initial (seeded) weights and save it as a training checkpoint would."""
    torch.manual_seed(0)
    model = build(to_plain(load_config(config).model), "model")
    torch.save({"state_dict": model.state_dict(), "meta": {"dataset_meta": dataset_meta}}, path)
    return path


def images(seed: int = 0) -> list[np.ndarray]:
    """RGB uint8 images of SHAPES: a smooth gradient plus noise, so the models see some structure."""
    rng = np.random.default_rng(seed)
    out = []
    for h, w in SHAPES:
        ramp = np.linspace(0, 255, w, dtype=np.float32)[None, :, None].repeat(h, 0).repeat(3, 2)
        out.append(np.clip(ramp + rng.normal(0, 20, (h, w, 3)), 0, 255).astype(np.uint8))
    return out


def run_infer_tool(monkeypatch, capsys, *argv: str) -> str:
    """Call tools/infer.py's main with ``argv``; returns what it printed."""
    spec = importlib.util.spec_from_file_location("infer_tool", ROOT / "tools" / "infer.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    monkeypatch.setattr(sys, "argv", ["infer.py", *argv])
    tool.main()
    return capsys.readouterr().out


def image_folder(tmp_path: Path) -> Path:
    """Two readable images (png, jpg) of different sizes and one corrupt file."""
    folder = tmp_path / "images"
    folder.mkdir()
    first, second = images()
    cv2.imwrite(str(folder / "a.png"), cv2.cvtColor(first, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(folder / "b.jpg"), cv2.cvtColor(second, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 100])
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    return folder


def infer_image_folder(tmp_path: Path, monkeypatch, capsys, config: Path, dataset_meta: dict,
                       *options: str) -> tuple[Path, Path, str]:
    """Save the config's initial model and run tools/infer.py on ``image_folder`` into tmp_path / "out";
    returns (checkpoint, output folder, what it printed)."""
    ckpt = save_checkpoint(config, tmp_path / "model.pth", dataset_meta)
    out = tmp_path / "out"
    printed = run_infer_tool(monkeypatch, capsys, str(config), str(ckpt), str(image_folder(tmp_path)),
                             "--out-dir", str(out), *options)
    return ckpt, out, printed


# --- inference -----------------------------------------------------------------------------------------------


def test_segmentation_inference_returns_label_maps_at_the_original_size(tmp_path):
    ckpt = save_checkpoint(SEG_CONFIG, tmp_path / "seg.pth", {"classes": tuple("abcdef")})
    model = init_model(SEG_CONFIG, ckpt)
    assert isinstance(model.model, Segmentor) and model.class_names == tuple("abcdef")
    preds = inference(model, images())
    for pred, shape in zip(preds, SHAPES, strict=True):
        assert pred["sem_seg"].shape == shape and pred["sem_seg"].dtype == torch.long
        assert int(pred["sem_seg"].min()) >= 0 and int(pred["sem_seg"].max()) < model.model.num_classes
        assert pred["ori_shape"] == shape and pred["img_shape"] == shape  # the Segmentor resizes, not the input step
    # the same as the model's own predict on the batch a dataset would give (no test transforms)
    image = torch.from_numpy(images()[0].transpose(2, 0, 1).copy())
    sample = {"img_id": 0, "ori_shape": SHAPES[0], "img_shape": SHAPES[0], "scale_factor": (1.0, 1.0)}
    with torch.no_grad():
        direct = model(**model.data_preprocessor({"inputs": [image], "data_samples": [sample]}), mode="predict")
    torch.testing.assert_close(direct[0]["sem_seg"], preds[0]["sem_seg"])


def test_depth_inference_returns_metres_at_the_original_size(tmp_path):
    ckpt = save_checkpoint(DEPTH_CONFIG, tmp_path / "depth.pth", {"depth_scale": 1000.0})
    model = init_model(DEPTH_CONFIG, ckpt)
    assert isinstance(model.model, DepthEstimator) and model.model.test_size == (128, 128)
    preds = inference(model, images())
    for pred, shape in zip(preds, SHAPES, strict=True):
        depth = pred["depth"]
        assert depth.shape == shape and depth.dtype == torch.float32
        assert (depth > model.model.min_depth).all() and (depth < model.model.max_depth).all()


def test_restoration_inference_returns_images_at_the_output_size(tmp_path):
    # an untrained denoiser returns its input (zero residual): the pixel-space round trip is exact
    model = init_model(RESTORE_CONFIG, save_checkpoint(RESTORE_CONFIG, tmp_path / "dn.pth", {}))
    for pred, image in zip(inference(model, images()), images(), strict=True):
        assert pred["restored"].dtype == torch.uint8
        np.testing.assert_array_equal(pred["restored"].numpy().transpose(1, 2, 0), image)
    sr = init_model(SR_CONFIG, save_checkpoint(SR_CONFIG, tmp_path / "sr.pth", {}))
    for pred, (h, w) in zip(inference(sr, images()), SHAPES, strict=True):
        assert tuple(pred["restored"].shape) == (3, 2 * h, 2 * w)


def test_class_names_fall_back_to_the_test_dataset():
    # no checkpoint: the quickstart's SegFolderDataset names its classes in the config
    cfg = load_config(SEG_CONFIG)
    assert init_model(cfg).class_names == tuple(cfg.test_dataloader.dataset.classes)
    # a dataset class with its own list (ADE20K); the dataset itself is never built
    cfg.test_dataloader = dict(dataset=dict(type=ADE20K, data_root="nowhere", split="validation"))
    assert init_model(cfg).class_names == ADE20K_CLASSES
    # neither: numbered classes; and no classes at all for depth
    cfg.test_dataloader = dict(dataset=dict(type=SegFolderDataset, img_dir="x", ann_dir="y"))
    assert init_model(cfg).class_names == tuple("012345")
    assert init_model(DEPTH_CONFIG).class_names == ()


def test_models_without_a_task_are_refused():
    with pytest.raises(TypeError, match="no inference task for Linear; known models: MaskRCNN, Segmentor"):
        task_of(torch.nn.Linear(1, 1))
    cfg = Config(dict(model=dict(type=torch.nn.Linear, in_features=1, out_features=1)))
    with pytest.raises(TypeError, match="no inference task for Linear"):
        init_model(cfg)


# --- tools/infer.py --------------------------------------------------------------------------------------------


def test_infer_tool_writes_overlays_and_label_pngs(tmp_path, monkeypatch, capsys):
    ckpt, out, printed = infer_image_folder(tmp_path, monkeypatch, capsys, SEG_CONFIG, {"classes": tuple("abcdef")})
    assert "skipped 1 unreadable" in printed and "broken.png" in printed
    assert sorted(p.name for p in out.iterdir()) == ["a_labels.png", "a_overlay.png", "b_labels.png",
                                                     "b_overlay.png", "predictions.json"]
    expected = inference(init_model(SEG_CONFIG, ckpt), [tmp_path / "images" / "a.png", tmp_path / "images" / "b.jpg"])
    for stem, shape, pred in zip("ab", SHAPES, expected, strict=True):
        labels = read_label(out / f"{stem}_labels.png")  # a palette PNG, read as the datasets read labels
        assert labels.dtype == np.uint8 and labels.shape == shape
        np.testing.assert_array_equal(labels, pred["sem_seg"].numpy())  # class indices, as predicted
        overlay = cv2.imread(str(out / f"{stem}_overlay.png"))
        assert overlay.shape[0] >= shape[0] and overlay.shape[1] > shape[1]  # the legend sits on the right
    records = json.loads((out / "predictions.json").read_text())
    assert [r["file_name"] for r in records] == ["a.png", "b.jpg"]
    assert sum(records[0]["class_fractions"].values()) == pytest.approx(1.0, abs=1e-4)
    assert set(records[0]["class_fractions"]) <= set("abcdef")


def test_infer_tool_writes_colour_and_16_bit_depth_pngs(tmp_path, monkeypatch, capsys):
    ckpt, out, printed = infer_image_folder(tmp_path, monkeypatch, capsys, DEPTH_CONFIG, {"depth_scale": 1000.0})
    assert "skipped 1 unreadable" in printed and "broken.png" in printed
    assert sorted(p.name for p in out.iterdir()) == ["a_depth.png", "a_depth16.png", "b_depth.png",
                                                     "b_depth16.png", "predictions.json"]
    expected = inference(init_model(DEPTH_CONFIG, ckpt), [tmp_path / "images" / "a.png", tmp_path / "images" / "b.jpg"])
    for stem, shape, pred in zip("ab", SHAPES, expected, strict=True):
        depth16 = cv2.imread(str(out / f"{stem}_depth16.png"), cv2.IMREAD_UNCHANGED)
        assert depth16.dtype == np.uint16 and depth16.shape == shape
        np.testing.assert_allclose(depth16 / 1000.0, pred["depth"].numpy(), atol=1e-3)  # millimetres
        colour = cv2.imread(str(out / f"{stem}_depth.png"))
        assert colour.shape[0] == shape[0] and colour.shape[1] > shape[1]  # the colour bar sits on the right
    records = json.loads((out / "predictions.json").read_text())
    assert [r["file_name"] for r in records] == ["a.png", "b.jpg"] and records[0]["png16_scale"] == 1000.0
    assert records[0]["depth_min"] <= records[0]["depth_median"] <= records[0]["depth_max"]


def test_infer_tool_still_writes_detections(tmp_path, monkeypatch, capsys):
    _, out, printed = infer_image_folder(tmp_path, monkeypatch, capsys, DET_CONFIG,
                                         {"classes": tuple("vwxyz"), "cat_ids": [1, 3, 5, 7, 9]}, "--score-thr", "0.0")
    assert "for 2 images" in printed and "broken.png" in printed
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png", "predictions.json"]
    assert cv2.imread(str(out / "a.png")).shape[:2] == SHAPES[0]
    records = json.loads((out / "predictions.json").read_text())
    assert all(r["category_id"] in (1, 3, 5, 7, 9) and r["file_name"] in ("a.png", "b.jpg") for r in records)


def test_infer_tool_restores_on_tiles(tmp_path, monkeypatch, capsys):
    ckpt, out, printed = infer_image_folder(tmp_path, monkeypatch, capsys, SR_CONFIG, {}, "--tile", "48",
                                            "--tile-overlap", "16")
    assert "for 2 images" in printed
    assert sorted(p.name for p in out.iterdir()) == ["a_compare.png", "a_restored.png", "b_compare.png",
                                                     "b_restored.png", "predictions.json"]
    for stem, (h, w) in zip("ab", SHAPES, strict=True):
        assert cv2.imread(str(out / f"{stem}_restored.png")).shape == (2 * h, 2 * w, 3)
        # input | restored over their zoomed crops, with 4 px separators
        assert cv2.imread(str(out / f"{stem}_compare.png")).shape == (2 * h + 4 + 2 * w, 4 * w + 4, 3)
    records = json.loads((out / "predictions.json").read_text())
    assert records[0] == {"image_id": 0, "file_name": "a.png", "input_height": 100, "input_width": 150,
                          "height": 200, "width": 300, "scale": 2}
    with pytest.raises(SystemExit, match="--tile 16 must be larger than --tile-overlap 32"):
        run_infer_tool(monkeypatch, capsys, str(SR_CONFIG), str(ckpt), str(tmp_path / "images"), "--out-dir",
                       str(out), "--tile", "16")


# --- pose ------------------------------------------------------------------------------------------------------


needs_person_mini = needs_sample(PERSON_MINI)


@needs_person_mini
def test_pose_inference_crops_each_box_as_the_dataset_does(tmp_path):
    model = init_model(POSE_CONFIG, save_checkpoint(POSE_CONFIG, tmp_path / "pose.pth", POSE_META))
    assert keypoint_info_of(model) == COCO_KEYPOINTS and model.cat_ids == [1]
    dataset = CocoKeypoints(PERSON_MINI / "annotations" / "person_keypoints_mini.json", PERSON_MINI / "images",
                            input_size=(128, 96))
    items = [dataset[i] for i in range(len(dataset)) if dataset.instances[i]["img_id"] == 196141]
    expected = model(**model.data_preprocessor(collate(items), False), mode="predict")
    boxes = np.array([it["data_samples"]["bbox"] for it in items])
    pred = pose_inference(model, items[0]["data_samples"]["img_path"], boxes, np.full(len(boxes), 0.5))
    assert pred["keypoints"].shape == (len(items), 17, 2) and pred["keypoint_scores"].shape == (len(items), 17)
    np.testing.assert_allclose(pred["keypoints"], np.stack([e["keypoints"] for e in expected]), atol=1e-3)
    np.testing.assert_allclose(pred["scores"], [0.5 * e["score"] for e in expected], rtol=1e-5)
    whole = inference(model, [np.zeros((90, 70, 3), np.uint8)])[0]  # no boxes: the whole image is one person
    assert whole["boxes"].tolist() == [[0, 0, 70, 90]] and whole["keypoints"].shape == (1, 17, 2)
    assert pose_inference(model, np.zeros((90, 70, 3), np.uint8), np.zeros((0, 4)))["keypoints"].shape == (0, 17, 2)


@needs_person_mini
def test_infer_tool_draws_skeletons_from_a_box_file_a_detector_or_the_whole_image(tmp_path, monkeypatch, capsys):
    ckpt = save_checkpoint(POSE_CONFIG, tmp_path / "pose.pth", POSE_META)
    out = tmp_path / "boxes"
    dets = PERSON_MINI / "annotations" / "person_detections_mini.json"
    printed = run_infer_tool(monkeypatch, capsys, str(POSE_CONFIG), str(ckpt), str(PERSON_MINI / "images"),
                             "--out-dir", str(out), "--bbox-file", str(dets), "--det-score-thr", "0.5")
    assert "for 4 images" in printed and len(list(out.glob("*.png"))) == 4
    records = json.loads((out / "predictions.json").read_text())
    kept = [d for d in json.loads(dets.read_text()) if d["score"] >= 0.5]
    assert len(records) == len(kept) and {r["image_id"] for r in records} == {785, 40083, 196141, 197388}
    assert all(len(r["keypoints"]) == 51 and r["category_id"] == 1 for r in records)
    # the whole image as one person, and a detector's boxes of one class
    folder = image_folder(tmp_path)
    run_infer_tool(monkeypatch, capsys, str(POSE_CONFIG), str(ckpt), str(folder), "--out-dir", str(tmp_path / "w"))
    assert [r["bbox"] for r in json.loads((tmp_path / "w" / "predictions.json").read_text())] == [
        [0, 0, 150, 100], [0, 0, 60, 72]]
    det_ckpt = save_checkpoint(DET_CONFIG, tmp_path / "det.pth", {"classes": tuple("vwxyz")})
    run_infer_tool(monkeypatch, capsys, str(POSE_CONFIG), str(ckpt), str(folder), "--out-dir", str(tmp_path / "d"),
                   "--det-config", str(DET_CONFIG), "--det-checkpoint", str(det_ckpt), "--det-class", "w",
                   "--det-score-thr", "0.0")
    detector = init_model(DET_CONFIG, det_ckpt)
    found = inference(detector, [folder / "a.png", folder / "b.jpg"])
    expected = sum(int(((p["labels"] == 1) & (p["scores"] >= 0.0)).sum()) for p in found)
    assert expected > 0 and len(json.loads((tmp_path / "d" / "predictions.json").read_text())) == expected
    with pytest.raises(SystemExit, match="refers to images by id"):
        run_infer_tool(monkeypatch, capsys, str(POSE_CONFIG), str(ckpt), str(folder), "--out-dir", str(out),
                       "--bbox-file", str(dets))
    with pytest.raises(ValueError, match=r"have no 'person'"):
        run_infer_tool(monkeypatch, capsys, str(POSE_CONFIG), str(ckpt), str(folder), "--out-dir", str(out),
                       "--det-config", str(DET_CONFIG), "--det-checkpoint", str(det_ckpt))


def test_inputs_paths_pil_bgr_grayscale_rgba_and_batches(tmp_path):
    from PIL import Image

    from densevit.apis import to_rgb

    rgb = images()[0]
    path = tmp_path / "a.png"
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    for same in (path, str(path), Image.fromarray(rgb), rgb[:, :, ::-1].copy(), np.dstack([rgb, rgb[:, :, :1]])):
        order = "bgr" if isinstance(same, np.ndarray) and same.shape[2] == 3 else "rgb"
        np.testing.assert_array_equal(to_rgb(same, order), rgb)
    gray = rgb[:, :, 0]
    assert (to_rgb(gray) == gray[:, :, None]).all() and to_rgb(gray[:, :, None]).shape == (*gray.shape, 3)
    with pytest.raises(TypeError, match="uint8"):
        to_rgb(rgb.astype(np.float32))
    with pytest.raises(ValueError, match=r"got shape \[100, 150, 2\]"):
        to_rgb(rgb[:, :, :2])
    # one image or a list, any batch size: the same predictions
    model = init_model(SEG_CONFIG)
    one = inference(model, rgb)
    both = inference(model, [Image.fromarray(rgb), images()[1]], batch_size=1)
    assert len(one) == 1 and len(both) == 2 and [p["img_id"] for p in both] == [0, 1]
    torch.testing.assert_close(one[0]["sem_seg"], both[0]["sem_seg"])
    torch.testing.assert_close(inference(model, rgb[:, :, ::-1].copy(), channel_order="bgr")[0]["sem_seg"],
                               one[0]["sem_seg"])


def test_init_model_reads_published_safetensors_and_names_a_misfit(tmp_path):
    import json as _json

    from safetensors.torch import save_file

    pth = save_checkpoint(SEG_CONFIG, tmp_path / "seg.pth", {"classes": tuple("abcdef")})
    state = torch.load(pth, weights_only=True)["state_dict"]
    published = tmp_path / "seg-0123abcd.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(published),
              metadata={"format": "pt", "densevit_dataset_meta": _json.dumps({"classes": list("abcdef")})})
    model = init_model(SEG_CONFIG, published)
    assert model.class_names == tuple("abcdef")
    loaded = model.model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items())
    del state[next(iter(state))]
    torch.save({"state_dict": state}, tmp_path / "partial.pth")
    with pytest.raises(ValueError, match=r"partial\.pth .*1 tensors of Segmentor are not in the checkpoint"):
        init_model(SEG_CONFIG, tmp_path / "partial.pth")


def test_pose_records_hold_the_rounded_values():
    """Keypoint records are written with 3 decimals, not float32's binary expansion of them."""
    from types import SimpleNamespace

    from densevit.apis import pose_records

    pred = {"keypoints": np.array([[[342.609, 10.5]]], np.float32), "keypoint_scores": np.array([[0.25]], np.float32),
            "scores": np.array([0.9], np.float32), "boxes": np.array([[1.0, 2.0, 30.0, 40.0]], np.float32)}
    record = pose_records(SimpleNamespace(cat_ids=[1]), pred, 7, "a.jpg")[0]
    assert json.dumps(record["keypoints"]) == "[342.609, 10.5, 0.25]"
    assert record["image_id"] == 7 and record["bbox"] == [1.0, 2.0, 30.0, 40.0]

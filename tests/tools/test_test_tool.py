"""tools/test.py's --out, --show-dir and --tta, and the segmentation report, on random tiny models over demo data:
saved files hold the model's predictions in the standard formats, flip TTA on mirror-symmetric images gives
mirror-symmetric predictions, and options that do not apply to the config's task fail before any work."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from densevit.apis import inference, init_model
from densevit.config import build, load_config, to_plain
from densevit.datasets.demo import generate_demo_dataset
from densevit.vis.depth import depth_to_png16

pytestmark = [pytest.mark.usefixtures("one_thread"),
              pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")]

QUICKSTART = Path(__file__).resolve().parents[2] / "configs" / "quickstart"
SEG, DEPTH = QUICKSTART / "upernet_vit_tiny_demo.py", QUICKSTART / "dpt_vit_tiny_demo.py"
SIZE = 64
# the mirror-symmetric copies, run at their own size (no test resize, no padding): the model's input is symmetric
SYM_SEG = ("test_dataloader.dataset.img_dir=data/demo/sym/img", "test_dataloader.dataset.img_suffix=.png",
           "test_dataloader.dataset.ann_dir=data/demo/sym/label", "model.test_scale=None")
SYM_DEPTH = ("test_dataloader.dataset.split_file=data/demo/sym/depth.txt", "model.test_size=None")


def mirror_symmetric(picture: np.ndarray) -> np.ndarray:
    """The left half and its mirror image: a picture equal to its own left-right flip."""
    left = picture[:, : picture.shape[1] // 2]
    return np.concatenate([left, left[:, ::-1]], axis=1)


@pytest.fixture(scope="module")
def demo_cwd(tmp_path_factory) -> Path:
    """A folder holding data/demo (2 val images of 64 px with label maps and depth), their mirror-symmetric copies
    under data/demo/sym (lossless PNG images, labels and depths, and a depth split file), and checkpoints of the
    randomly initialised quickstart segmentor and depth model."""
    cwd = tmp_path_factory.mktemp("test_tool")
    root = generate_demo_dataset(cwd / "data" / "demo", num_train=1, num_val=2, image_size=SIZE,
                                 tasks=("semantic", "depth"), progress=False)
    for sub in ("img", "label", "depth"):
        (root / "sym" / sub).mkdir(parents=True)
    lines = []
    for image in sorted((root / "val").glob("*.jpg")):
        cv2.imwrite(str(root / "sym" / "img" / f"{image.stem}.png"), mirror_symmetric(cv2.imread(str(image))))
        for source, sub in ((root / "semantic" / "val", "label"), (root / "depth" / "val", "depth")):
            picture = cv2.imread(str(source / f"{image.stem}.png"), cv2.IMREAD_UNCHANGED)
            cv2.imwrite(str(root / "sym" / sub / f"{image.stem}.png"), mirror_symmetric(picture))
        lines.append(f"sym/img/{image.stem}.png sym/depth/{image.stem}.png 64.0\n")
    (root / "sym" / "depth.txt").write_text("".join(lines))
    for config in (SEG, DEPTH):
        torch.manual_seed(0)
        model = build(to_plain(load_config(config).model), "model")
        torch.save({"state_dict": model.state_dict()}, cwd / f"{config.stem}.pth")
    return cwd


def run_test(tool, cwd: Path, config: Path, work_dir: Path, *options: object) -> dict:
    tool("test.py", config, cwd / f"{config.stem}.pth", "--work-dir", work_dir, *options)
    return json.loads((work_dir / "metrics.json").read_text())


def read_png(path: Path) -> np.ndarray:
    """A PNG's pixel values as stored (palette indices, 16-bit values)."""
    return np.asarray(Image.open(path))


def mirrored_equal(x: np.ndarray) -> np.ndarray:
    """Where a map equals its own left-right mirror image."""
    return x == x[:, ::-1]


def test_segmentation_saves_label_pngs_pictures_and_a_confusion_matrix(tool, demo_cwd, tmp_path, monkeypatch):
    monkeypatch.chdir(demo_cwd)
    metrics = run_test(tool, demo_cwd, SEG, tmp_path, "--out", tmp_path / "labels", "--show-dir", tmp_path / "show",
                       "--show-num", 1)
    model = init_model(SEG, demo_cwd / f"{SEG.stem}.pth")
    images = sorted((demo_cwd / "data" / "demo" / "val").glob("*.jpg"))
    for image, pred in zip(images, inference(model, images), strict=True):
        labels = read_png(tmp_path / "labels" / f"{image.stem}_labels.png")
        np.testing.assert_array_equal(labels, pred["sem_seg"].numpy())  # class indices, the model's own
    (picture,) = (tmp_path / "show").glob("*.png")
    assert picture.stem == images[0].stem and cv2.imread(str(picture)).shape[1] > 2 * SIZE  # two panels

    with open(tmp_path / "confusion_matrix.csv") as f:
        header, *rows = list(csv.reader(f))
    classes = load_config(SEG).classes
    assert header[1:] == list(classes) and [r[0] for r in rows] == list(classes)
    sums = [sum(float(v) for v in row[1:]) for row in rows if row[1]]  # classes absent from ground truth are empty
    assert sums and np.allclose(sums, 1.0, atol=1e-5)
    assert cv2.imread(str(tmp_path / "confusion_matrix.png")) is not None
    with open(tmp_path / "per_class.csv") as f:
        table = list(csv.DictReader(f))
    assert [r["class"] for r in table] == list(classes)
    assert np.nanmean([float(r["IoU"] or "nan") for r in table]) == pytest.approx(metrics["mIoU"], abs=0.01)
    assert (tmp_path / "per_class.md").read_text().startswith("| class | IoU | Acc |")


def test_segmentation_flip_tta_on_mirror_symmetric_images(tool, demo_cwd, tmp_path, monkeypatch, capsys):
    """On an image equal to its mirror image, the flipped view sees the same input, so the averaged softmax is
    mirror-symmetric: the labels equal the plain ones wherever those are symmetric, and differ elsewhere."""
    monkeypatch.chdir(demo_cwd)
    run_test(tool, demo_cwd, SEG, tmp_path / "plain", "--out", tmp_path / "plain", "--cfg-options", *SYM_SEG)
    run_test(tool, demo_cwd, SEG, tmp_path / "tta", "--out", tmp_path / "tta", "--tta", "--cfg-options", *SYM_SEG)
    assert "test-time augmentation on: views at scales 1 and their mirror images" in capsys.readouterr().out
    differ = 0
    for path in sorted((tmp_path / "plain").glob("*_labels.png")):
        plain, tta = read_png(path), read_png(tmp_path / "tta" / path.name)
        assert mirrored_equal(tta).all()
        symmetric = mirrored_equal(plain)
        np.testing.assert_array_equal(tta[symmetric], plain[symmetric])
        differ += int((tta != plain).sum())
    assert differ > 0  # the plain prediction is not symmetric: TTA changed it


def test_depth_saves_millimetre_pngs_and_flip_tta_averages_mirrored_predictions(tool, demo_cwd, tmp_path,
                                                                                  monkeypatch):
    monkeypatch.chdir(demo_cwd)
    run_test(tool, demo_cwd, DEPTH, tmp_path / "plain", "--out", tmp_path / "plain", "--show-dir",
             tmp_path / "show", "--cfg-options", *SYM_DEPTH)
    run_test(tool, demo_cwd, DEPTH, tmp_path / "tta", "--out", tmp_path / "tta", "--tta", "--cfg-options",
             *SYM_DEPTH)
    model = init_model(load_config(DEPTH, {"model.test_size": None}), demo_cwd / f"{DEPTH.stem}.pth")
    images = sorted((demo_cwd / "data" / "demo" / "sym" / "img").glob("*.png"))
    assert len(list((tmp_path / "show").glob("*.png"))) == len(images)
    for image, pred in zip(images, inference(model, images), strict=True):
        plain = read_png(tmp_path / "plain" / f"{image.stem}_depth16.png")
        tta = read_png(tmp_path / "tta" / f"{image.stem}_depth16.png")
        assert plain.dtype == np.uint16
        np.testing.assert_allclose(plain, depth_to_png16(pred["depth"]), atol=1)  # millimetres of the prediction
        # the mirrored image is the image itself: TTA averages the prediction with its mirror image
        np.testing.assert_allclose(tta, (plain.astype(float) + plain[:, ::-1]) / 2, atol=1)
        assert np.abs(tta.astype(int) - plain).max() > 10


def test_detection_saves_coco_results_and_pictures(tool, trained_tiny, demo_root, tmp_path):
    from pycocotools.coco import COCO

    tool("test.py", trained_tiny.config_file, trained_tiny.work_dir / "iter_4.pth", "--work-dir", tmp_path,
         "--out", tmp_path / "results.json", "--show-dir", tmp_path / "show", "--show-num", 2, "--score-thr", 0.0)
    results = json.loads((tmp_path / "results.json").read_text())
    assert results and all({"bbox", "score", "segmentation"} <= set(r) for r in results)
    gt = COCO(str(demo_root / "annotations" / "instances_val.json"))
    loaded = gt.loadRes(str(tmp_path / "results.json"))
    assert len(loaded.anns) == len(results) and set(loaded.getImgIds()) <= set(gt.getImgIds())
    assert len(list((tmp_path / "show").glob("*.png"))) == 2


@pytest.mark.parametrize("which, options, message", [
    ("detection", ("--tta",), "MaskRCNN has no test-time augmentation"),
    ("detection", ("--no-tta",), "MaskRCNN has no test-time augmentation"),
    ("detection", ("--out", "predictions"), "one COCO result file; give a .json path"),
    ("depth", ("--out", "depth.json"), "pictures, one per image; give a folder"),
    ("depth", ("--show-dir", "show", "--score-thr", 0.5), "DepthEstimator draws no scored detections"),
])
def test_options_that_do_not_apply_fail_before_reading_the_checkpoint(tool, trained_tiny, demo_cwd, tmp_path,
                                                                       monkeypatch, which, options, message):
    monkeypatch.chdir(demo_cwd)
    config = trained_tiny.config_file if which == "detection" else DEPTH
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")  # reading it would fail: the option's error must come first
    with pytest.raises(SystemExit, match=message):
        tool("test.py", config, junk, "--work-dir", tmp_path, *options)

"""tools/test.py and tools/infer.py on a checkpoint of the tiny Mask R-CNN; bad inputs fail naming the file; the
RoIAlign benchmark on a tiny workload; test.py's OKS AP and the benchmark's crops per second for the pose model."""

from __future__ import annotations

import json
import re
import runpy
import shutil
import sys
from pathlib import Path

import pytest
import torch

from densevit.config import build, load_config, to_plain
from densevit.datasets.demo import generate_demo_dataset

TOOLS = Path(__file__).resolve().parents[2] / "tools"

pytestmark = [pytest.mark.usefixtures("one_thread"),
              pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")]


def run_tool(monkeypatch, tool: str, *args: object) -> None:
    """Run tools/<tool> in this process, as from the shell."""
    monkeypatch.setattr(sys, "argv", [tool, *map(str, args)])
    runpy.run_path(str(TOOLS / tool), run_name="__main__")


def test_test_tool_writes_flat_metrics(trained_tiny, tmp_path, monkeypatch):
    run_tool(monkeypatch, "test.py", trained_tiny.config_file, trained_tiny.work_dir / "iter_4.pth",
             "--work-dir", tmp_path, "--cfg-options", "experiment_name=tool_test")
    metrics = json.loads((tmp_path / "metrics.json").read_text(), parse_constant=_refuse)  # strict JSON
    assert {"bbox_AP", "bbox_AP50", "segm_AP"} <= set(metrics)
    assert all(isinstance(metrics[k], float) for k in ("bbox_AP", "bbox_AP50", "segm_AP"))
    # null: no ground truth in that size range (64-pixel images have no large objects)
    assert all(v is None or 0.0 <= v <= 100.0 for v in metrics.values()), metrics
    assert metrics["bbox_APl"] is None


def _refuse(constant: str) -> None:
    raise ValueError(f"metrics.json holds {constant}, which is not JSON")


def test_infer_tool_skips_and_names_a_corrupt_file(trained_tiny, demo_root, tmp_path, monkeypatch, capsys):
    images = tmp_path / "images"
    images.mkdir()
    for source in sorted((demo_root / "val").glob("*.jpg"))[:2]:
        shutil.copy(source, images / source.name)
    (images / "broken.jpg").write_bytes(b"not a JPEG")
    out_dir = tmp_path / "out"
    run_tool(monkeypatch, "infer.py", trained_tiny.config_file, trained_tiny.work_dir / "iter_4.pth", images,
             "--out-dir", out_dir, "--score-thr", "0.0")
    good = sorted(p.stem for p in images.glob("0*.jpg"))
    assert sorted(p.name for p in out_dir.iterdir()) == [f"{stem}.png" for stem in good] + ["predictions.json"]
    records = json.loads((out_dir / "predictions.json").read_text())
    assert isinstance(records, list) and {r["file_name"] for r in records} <= {f"{s}.jpg" for s in good}
    assert "broken.jpg" in capsys.readouterr().out


def test_infer_tool_keeps_pictures_of_images_sharing_a_stem_and_says_what_it_drew(trained_tiny, demo_root, tmp_path,
                                                                                    monkeypatch, capsys):
    import cv2

    images = tmp_path / "images"
    images.mkdir()
    source = sorted((demo_root / "val").glob("*.jpg"))[0]
    shutil.copy(source, images / "x.jpg")
    cv2.imwrite(str(images / "x.png"), cv2.imread(str(source)))
    out_dir = tmp_path / "out"
    run_tool(monkeypatch, "infer.py", trained_tiny.config_file, trained_tiny.work_dir / "iter_4.pth", images,
             "--out-dir", out_dir, "--score-thr", "1.01")
    assert sorted(p.name for p in out_dir.glob("*.png")) == ["x_jpg.png", "x_png.png"]
    records = json.loads((out_dir / "predictions.json").read_text())
    assert re.search(rf"{len(records)} predictions for 2 images .*; 0 of them score 1.01 or more and are drawn",
                     capsys.readouterr().out)


def test_a_missing_image_is_named(trained_tiny, demo_root, tmp_path, monkeypatch):
    data = json.loads((demo_root / "annotations" / "instances_val.json").read_text())
    data["images"][0]["file_name"] = "missing.jpg"
    ann_file = tmp_path / "missing_image.json"
    ann_file.write_text(json.dumps(data))
    with pytest.raises(FileNotFoundError, match=r"image file .*missing\.jpg does not exist"):
        run_tool(monkeypatch, "test.py", trained_tiny.config_file, trained_tiny.work_dir / "iter_4.pth",
                 "--work-dir", tmp_path / "work", "--cfg-options", "experiment_name=missing_image",
                 f"test_dataloader.dataset.ann_file={ann_file}", f"test_evaluator.ann_file={ann_file}")


def test_a_malformed_annotation_file_is_named(trained_tiny, tmp_path, monkeypatch):
    ann_file = tmp_path / "truncated.json"
    ann_file.write_text('{"images": [{"id": 1,')
    with pytest.raises(ValueError, match=r"annotation file .*truncated\.json is not valid JSON"):
        run_tool(monkeypatch, "test.py", trained_tiny.config_file, trained_tiny.work_dir / "iter_4.pth",
                 "--work-dir", tmp_path / "work", "--cfg-options", f"test_dataloader.dataset.ann_file={ann_file}")


def test_missing_config_and_checkpoint_files_are_named(trained_tiny, tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match=r"config file .*no_such_config\.py does not exist"):
        run_tool(monkeypatch, "test.py", tmp_path / "no_such_config.py", trained_tiny.work_dir / "iter_4.pth")
    with pytest.raises(SystemExit, match=r"checkpoint .*no_such\.pth does not exist"):
        run_tool(monkeypatch, "test.py", trained_tiny.config_file, tmp_path / "no_such.pth")
    with pytest.raises(FileNotFoundError, match=r"config file .*no_such_config\.py does not exist"):
        run_tool(monkeypatch, "infer.py", tmp_path / "no_such_config.py", trained_tiny.work_dir / "iter_4.pth",
                 tmp_path, "--out-dir", tmp_path / "out")


def test_roi_align_benchmark_compares_both_implementations(monkeypatch, capsys):
    run_tool(monkeypatch, "benchmark_roi_align.py", "--image-size", 64, "--batch", 2, "--rois", 4, "--channels", 8,
             "--repeats", 1)
    out = capsys.readouterr().out
    differences = re.findall(r"max \|difference\| (\S+)", out)
    assert len(differences) == 2 and all(float(d) < 1e-5 for d in differences), out
    assert out.count("speed-up: forward x") == 2


POSE_CONFIG = TOOLS.parent / "configs" / "quickstart" / "topdown_pose_hybrid_vit_tiny_demo.py"


def test_test_tool_scores_a_pose_checkpoint_with_oks_ap(tmp_path, monkeypatch, capsys):
    root = generate_demo_dataset(tmp_path / "demo", num_train=0, num_val=3, image_size=96, tasks=("pose",),
                                 progress=False)
    torch.manual_seed(0)
    ckpt = tmp_path / "pose.pth"
    torch.save({"state_dict": build(to_plain(load_config(POSE_CONFIG).model), "model").state_dict()}, ckpt)
    ann, images = root / "annotations" / "person_keypoints_val.json", root / "pose" / "val"
    run_tool(monkeypatch, "test.py", POSE_CONFIG, ckpt, "--work-dir", tmp_path / "test", "--cfg-options",
             f"test_dataloader.dataset.ann_file={ann}", f"test_dataloader.dataset.img_dir={images}",
             f"test_evaluator.ann_file={ann}", "test_dataloader.num_workers=0", "test_dataloader.batch_size=4")
    metrics = json.loads((tmp_path / "test" / "metrics.json").read_text(), parse_constant=_refuse)
    assert {"kpt_AP", "kpt_AP50", "kpt_AR"} <= set(metrics) and 0 <= metrics["kpt_AP"] <= 100
    assert "OKS area: the ground-truth annotation's 'area'" in capsys.readouterr().out


def test_benchmark_reports_pose_crops_per_second(monkeypatch, capsys):
    run_tool(monkeypatch, "benchmark.py", POSE_CONFIG, "--shape", 128, 96, "--batch", 2, "--repeats", 1,
             "--warmup", 0, "--threads", 1)
    out = capsys.readouterr().out
    assert "TopDownPose.predict" in out
    assert re.search(r"throughput:\s+\d+\.\d inputs/s \(median latency, batch 2\)", out), out

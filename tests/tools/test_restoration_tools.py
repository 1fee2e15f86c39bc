"""tools/restoration_baselines.py scores the filters with the evaluator's PSNR / SSIM; tools/degrade_images.py writes
the degraded copies; tools/benchmark.py times tiled restoration."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from densevit.evaluation.restoration import psnr, ssim
from densevit.ops.degradations import imresize

TOOLS = Path(__file__).resolve().parents[2] / "tools"
CONFIGS = Path(__file__).resolve().parents[2] / "configs"

pytestmark = pytest.mark.usefixtures("one_thread")


def run_tool(monkeypatch, tool: str, *args: object) -> None:
    monkeypatch.setattr(sys, "argv", [tool, *map(str, args)])
    runpy.run_path(str(TOOLS / tool), run_name="__main__")


def write_pairs(root: Path, lq_fn, lq_name: str = "{}") -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    pairs = []
    for i in range(2):
        gt = cv2.GaussianBlur(rng.integers(0, 256, (32, 40, 3), dtype=np.uint8), (5, 5), 0)
        lq = lq_fn(gt, rng)
        for folder, image, name in (("gt", gt, f"{i}"), ("lq", lq, lq_name.format(i))):
            (root / folder).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(root / folder / f"{name}.png"), image[..., ::-1])
        pairs.append((gt, lq))
    return pairs


def test_baselines_match_the_evaluator(tmp_path, monkeypatch, capsys):
    pairs = write_pairs(tmp_path, lambda gt, rng: np.clip(gt + rng.normal(0, 15, gt.shape), 0, 255).astype(np.uint8))
    run_tool(monkeypatch, "restoration_baselines.py", tmp_path / "gt", tmp_path / "lq", "--out", tmp_path / "r.json")
    out = json.loads((tmp_path / "r.json").read_text())
    assert out["images"] == 2 and "RGB, crop_border 0" in out["convention"]
    assert {"degraded input", "non-local means h 10", "Gaussian 5x5", "bilateral d 9, colour 75, space 5"} <= set(
        out["results"])
    expected = np.mean([psnr(lq, gt) for gt, lq in pairs]), np.mean([ssim(lq, gt) for gt, lq in pairs])
    assert out["results"]["degraded input"] == {"psnr": round(expected[0], 4), "ssim": round(expected[1], 4)}
    assert "Gaussian 5x5" in capsys.readouterr().out


def test_baselines_bicubic_for_super_resolution(tmp_path, monkeypatch):
    pairs = write_pairs(tmp_path, lambda gt, rng: imresize(gt, 0.5), lq_name="{}x2")
    run_tool(monkeypatch, "restoration_baselines.py", tmp_path / "gt", tmp_path / "lq", "--lq-name", "{}x2",
             "--scale", "2", "--crop-border", "2", "--y", "--out", tmp_path / "r.json")
    results = json.loads((tmp_path / "r.json").read_text())["results"]
    expected = np.mean([psnr(imresize(lq, 2), gt, 2, True) for gt, lq in pairs])
    assert list(results) == ["bicubic (MATLAB)"] and results["bicubic (MATLAB)"]["psnr"] == round(expected, 4)


def test_degrade_images_writes_pngs(tmp_path, monkeypatch):
    source = tmp_path / "photos"
    source.mkdir()
    clean = np.full((40, 50, 3), 128, np.uint8)
    cv2.imwrite(str(source / "a.jpg"), clean)
    run_tool(monkeypatch, "degrade_images.py", source, tmp_path / "out", "--noise", "20", "--downscale", "2")
    noisy = cv2.imread(str(tmp_path / "out" / "a.png"))
    assert noisy.shape == (20, 25, 3) and 15 < (noisy.astype(float) - 128).std() < 25
    with pytest.raises(SystemExit):
        run_tool(monkeypatch, "degrade_images.py", source, tmp_path / "out")


def test_benchmark_times_tiled_restoration(monkeypatch, capsys):
    run_tool(monkeypatch, "benchmark.py", CONFIGS / "quickstart" / "restoration_hybrid_vit_tiny_demo.py", "--shape",
             "96", "96", "--repeats", "1", "--warmup", "0", "--tile", "64", "--tile-overlap", "16")
    printed = capsys.readouterr().out
    assert "ImageRestorer.predict (tiles 64, overlap 16)" in printed and "peak memory" in printed

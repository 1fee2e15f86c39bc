"""tools/benchmark_table.py on tiny workloads: one row per pair, each with both times and their ratio; one row per
quickstart task model with inference and training-step times, FLOPs and shares of the measured matmul peak."""

from __future__ import annotations

import re
import runpy
import sys
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parents[2] / "tools" / "benchmark_table.py"

pytestmark = pytest.mark.usefixtures("one_thread")


def test_table_prints_every_pair_with_its_ratio(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["benchmark_table.py", "--quick", "--repeats", "1"])
    runpy.run_path(str(TOOL), run_name="__main__")
    out = capsys.readouterr().out
    rows = re.findall(r"^(.+?)\s+(\d+\.\d)\s+(\d+\.\d)\s+(\d+\.\d{3})\s*(\d\.\d{3})?$", out, re.MULTILINE)
    expected = ["deformable attention"] * 2 + ["RoIAlign 7x7", "RoIAlign 14x14"] + ["STViT-R"] * 2
    assert [r[0].split(" vs ")[0] for r in rows] == expected, out
    assert all(float(r[3]) > 0 for r in rows)
    assert all(r[4] for r in rows if r[0].startswith("STViT-R"))  # FLOPs ratios where counted

    assert re.search(r"^matmul peak: \d+\.\d GFLOP/s \(float32\)", out, re.MULTILINE), out
    number = r"\s+(\d+\.\d+)"
    tasks = re.findall(rf"^(.+?)\s+(\d+x\d+){number * 7}$", out, re.MULTILINE)
    assert [t[0] for t in tasks] == ["Mask R-CNN, quickstart", "UperNet, quickstart", "DPT, quickstart",
                                     "ViTPose top-down, quickstart", "restoration, quickstart"], out
    for _, _, infer_ms, infer_gflops, infer_share, train_ms, train_gflops, train_share, ratio in tasks:
        assert float(infer_gflops) > 0 and float(train_gflops) > float(infer_gflops) / 2
        assert float(infer_share) > 0 and float(train_share) > 0
        assert float(ratio) == pytest.approx(float(train_ms) / float(infer_ms), rel=0.02, abs=0.01)

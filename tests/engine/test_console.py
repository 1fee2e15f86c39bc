"""The console: a short header and progress, the full dump in the log file; curves across resumed runs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from densevit.vis.curves import plot_loss_curves, read_scalars

ROOT = Path(__file__).resolve().parents[2]


def test_training_console_is_short_and_the_log_file_keeps_everything(trained_tiny, tmp_path):
    work_dir = tmp_path / "run"
    # one iteration, logging every 50: no loss is logged at all, which must not fail the run
    result = subprocess.run(
        [sys.executable, "tools/train.py", str(trained_tiny.config_file), "--work-dir", str(work_dir),
         "--cfg-options", "train_cfg.max_iters=1", "default_hooks.logger.interval=50"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    console = result.stdout
    assert "densevit | " in console and "M parameters | train 16 images" in console
    assert "System environment" not in console and "Config:" not in console and "Hooks will be executed" not in console
    assert len(console.splitlines()) < 30, console
    assert "no loss was logged" in console
    (log,) = work_dir.rglob("*.log")
    text = log.read_text()
    assert "System environment" in text and "Config:" in text and "processes: 1" in text
    assert "GPU number" not in text


def _run(folder: Path, steps: range, loss: float) -> None:
    (folder / "vis_data").mkdir(parents=True)
    rows = [{"loss": loss, "lr": 0.1, "step": s} for s in steps] + [{"mIoU": 50.0, "step": steps[-1]}]
    (folder / "vis_data" / "scalars.json").write_text("\n".join(json.dumps(r) for r in rows))


def test_curves_stitch_a_resumed_run_and_draw_a_single_point(tmp_path):
    _run(tmp_path / "20261204_100000", range(1, 5), loss=2.0)
    time.sleep(0.01)
    _run(tmp_path / "20261204_110000", range(3, 7), loss=1.0)  # resumed from iteration 2
    os.utime(tmp_path / "20261204_100000" / "vis_data" / "scalars.json", (1, 1))  # started first
    series = read_scalars(tmp_path)
    assert series["loss"] == ([1, 2, 3, 4, 5, 6], [2.0, 2.0, 1.0, 1.0, 1.0, 1.0])
    assert series["mIoU"] == ([4, 6], [50.0, 50.0])
    assert plot_loss_curves(tmp_path, tmp_path / "curves.png").stat().st_size > 0
    single = tmp_path / "single"
    _run(single / "20261204_120000", range(5, 6), loss=1.0)
    assert plot_loss_curves(single, single / "curves.png").is_file()
    assert plot_loss_curves(tmp_path / "empty", tmp_path / "none.png") is None


def test_validation_and_testing_show_a_progress_bar_on_a_terminal(tiny_config, tmp_path, monkeypatch, capsys,
                                                                  one_thread):
    """On a terminal, val and test loops get a bar with ETA like training; their per-batch log lines go to the log
    file only, and the metrics lines stay."""
    from mmengine.config import Config

    from densevit.engine import hooks
    from densevit.engine.runner import build_runner

    monkeypatch.setattr(hooks, "_interactive", lambda: True)
    cfg = tiny_config(train_cfg=dict(by_epoch=False, max_iters=2, val_interval=2))
    build_runner(Config(cfg), work_dir=tmp_path).train()
    build_runner(Config(cfg), work_dir=tmp_path / "test", load_from=str(tmp_path / "iter_2.pth"), train=False).test()
    console = capsys.readouterr()
    for loop in ("train", "val", "test"):  # 4 val images, batch 2: "<loop>:  50%|...| 1/2 [00:01<00:01, ...]"
        assert re.search(rf"{loop}: +\d+%\|.*\| \d/2 \[\d\d:\d\d<", console.err), console.err
    assert re.search(r"test: 100%\|.*\| 2/2 \[", console.err), console.err  # outside training a bar stays
    assert "Iter(val) [2/2]" in console.out and "Iter(test) [2/2]" in console.out, console.out
    assert " eta: " not in console.out, console.out

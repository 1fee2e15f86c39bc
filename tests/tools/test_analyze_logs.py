"""tools/analyze_logs.py: runs stitched across restarts, a one-point run, an empty run, best / last metrics."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import cv2
import pytest

pytestmark = [pytest.mark.usefixtures("one_thread"),
              pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")]


def log_run(work_dir: Path, start: str, records: list[dict], mtime: int) -> None:
    """One start of a run: its ``vis_data/scalars.json`` (JSON lines, as mmengine writes them)."""
    file = work_dir / start / "vis_data" / "scalars.json"
    file.parent.mkdir(parents=True)
    file.write_text("".join(json.dumps(r) + "\n" for r in records))
    os.utime(file, (mtime, mtime))


def row(text: str, run: str, scalar: str) -> list[str]:
    (line,) = [ln for ln in text.splitlines() if re.match(rf"{run}\s+{scalar}\s", ln)]
    return re.split(r"\s{2,}", line.strip())


def test_curves_and_table_of_resumed_one_point_and_empty_runs(tool, trained_tiny, tmp_path, capsys):
    resumed = tmp_path / "resumed"
    log_run(resumed, "20261204_100000", [{"loss": 2.0 - 0.1 * s, "lr": 1e-3, "step": s} for s in range(1, 7)]
            + [{"bbox_AP": 10.0, "step": 6}], mtime=1_000)
    # the second start resumed from iteration 4: it replaces 5 and 6 and goes on to 8
    log_run(resumed, "20261204_110000", [{"loss": 1.0, "lr": 1e-3, "step": s} for s in range(5, 9)]
            + [{"bbox_AP": 30.0, "step": 8}], mtime=2_000)
    single = tmp_path / "single"
    log_run(single, "20261204_120000", [{"loss": 3.0, "step": 1}], mtime=3_000)
    empty = tmp_path / "empty"
    (empty / "20261204_130000" / "vis_data").mkdir(parents=True)
    out = tmp_path / "curves.png"
    tool("analyze_logs.py", resumed, single, empty, trained_tiny.work_dir, "--out", out,
         "--names", "resumed", "single", "empty", "tiny")
    text = capsys.readouterr().out
    assert row(text, "resumed", "loss") == ["resumed", "loss", "1 @ 5", "1 @ 8", "8"]  # 4 first + 4 resumed
    assert row(text, "resumed", "bbox_AP") == ["resumed", "bbox_AP", "30 @ 8", "30 @ 8", "2"]
    assert row(text, "single", "loss") == ["single", "loss", "3 @ 1", "3 @ 1", "1"]
    assert row(text, "tiny", "loss")[-1] == "4"  # the real training run of the fixture: 4 logged iterations
    assert f"{empty}: nothing logged" in text and "lr " not in text
    picture = cv2.imread(str(out))
    assert picture is not None and picture.shape[1] > picture.shape[0] > 100


def test_nothing_logged_anywhere_is_an_error(tool, tmp_path):
    with pytest.raises(SystemExit, match="none of the work dirs has logged scalars"):
        tool("analyze_logs.py", tmp_path, "--out", tmp_path / "curves.png")

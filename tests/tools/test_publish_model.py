"""tools/publish_model.py: training state stripped, the file named by its sha256 and loadable by densevit."""

from __future__ import annotations

import hashlib
import json
import re

import pytest
import torch
from safetensors import safe_open

from densevit.apis import init_model
from densevit.checkpoint import load_state_dict_file, load_weights, read_checkpoint, read_torch_checkpoint
from densevit.config import build

pytestmark = [pytest.mark.usefixtures("one_thread"),
              pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")]


@pytest.mark.parametrize("fmt", ["safetensors", "pth"])
def test_published_file_holds_the_weights_and_loads_back(trained_tiny, tool, tmp_path, capsys, fmt):
    source = trained_tiny.work_dir / "iter_4.pth"
    tool("publish_model.py", source, tmp_path, "--format", fmt)
    (published,) = tmp_path.iterdir()
    digest = hashlib.sha256(published.read_bytes()).hexdigest()
    assert published.name == f"iter_4-{digest[:8]}.{fmt}"
    original = read_torch_checkpoint(source)
    assert {"optimizer", "message_hub"} <= set(original)  # what there was to strip
    weights = load_state_dict_file(published)
    assert weights.keys() == original["state_dict"].keys()
    assert all(torch.equal(weights[k], v) for k, v in original["state_dict"].items())
    model = build(trained_tiny.config["model"], "model")
    report = load_weights(model, published)  # the one way configs and tools load weights
    assert len(report.loaded) == len(weights) and not report.missing
    dataset_meta = original["meta"]["dataset_meta"]
    if fmt == "pth":
        assert set(read_torch_checkpoint(published)) == {"state_dict", "meta"}
        assert read_torch_checkpoint(published)["meta"]["dataset_meta"] == dataset_meta
    else:
        with safe_open(str(published), "pt") as f:
            assert json.loads(f.metadata()["densevit_dataset_meta"]) == json.loads(json.dumps(dataset_meta))
    out = capsys.readouterr().out
    assert re.search(rf"kept {len(weights)} tensors", out) and "optimizer" in out and digest in out


@pytest.mark.parametrize("fmt", ["safetensors", "pth"])
def test_published_ema_run_keeps_the_average(trained_tiny, tool, tmp_path, capsys, fmt):
    """A run with EMAHook saved the average as state_dict and the trained weights under ema_state_dict: the average
    is published, marked as such, and init_model says so."""
    checkpoint = read_torch_checkpoint(trained_tiny.work_dir / "iter_4.pth")
    average = checkpoint["state_dict"]
    trained = {f"module.{k}": v + 1 for k, v in average.items()}
    source = tmp_path / "ema.pth"
    torch.save({**checkpoint, "ema_state_dict": {**trained, "steps": torch.tensor(4)}}, source)
    tool("publish_model.py", source, tmp_path / "out", "--format", fmt)
    (published,) = (tmp_path / "out").iterdir()
    weights = load_state_dict_file(published)
    assert weights.keys() == average.keys() and all(torch.equal(weights[k], v) for k, v in average.items())
    assert read_checkpoint(published)["meta"]["ema"] is True
    assert "exponential moving average (EMA)" in capsys.readouterr().out
    model = init_model(trained_tiny.config_file, published)
    assert "exponential moving average (EMA)" in model.weights_note and "published" in model.weights_note

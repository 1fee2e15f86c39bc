"""Training that guards itself: non-finite steps, checkpoints that are never lost, strict weights-only loading."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

from densevit.engine.runner import build_runner

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.usefixtures("one_thread"),
              pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")]


def _weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    return torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]


def _blow_up_at(runner, iteration: int) -> None:
    """Make the mask loss NaN from ``iteration`` (1-based) on, as a diverging run does."""
    task = runner.model.model
    loss = task.loss

    def diverging(batch):
        losses = loss(batch)
        if runner.iter + 1 >= iteration:
            losses["loss_mask"] = losses["loss_mask"] * float("nan")
        return losses

    task.loss = diverging


def test_a_nonfinite_loss_stops_training_naming_the_iteration_and_term(tiny_config, tmp_path):
    runner = build_runner(Config(tiny_config(max_iters=4, checkpoint_interval=2, experiment_name="nan")),
                          work_dir=tmp_path)
    _blow_up_at(runner, 3)
    with pytest.raises(FloatingPointError, match=r"iteration 3: non-finite loss \(loss_mask\)"):
        runner.train()
    # the good checkpoint of iteration 2 is there, finite, and nothing was written after it
    assert sorted(p.name for p in tmp_path.glob("*.pth")) == ["iter_2.pth"]
    assert all(t.isfinite().all() for t in _weights(tmp_path / "iter_2.pth").values() if t.is_floating_point())
    assert all(p.isfinite().all() for p in runner.model.parameters())


def test_skip_mode_drops_nonfinite_steps_and_keeps_training(tiny_config, tmp_path):
    runner = build_runner(Config(tiny_config(max_iters=4, checkpoint_interval=4, experiment_name="skip",
                                             on_nonfinite="skip")), work_dir=tmp_path)
    _blow_up_at(runner, 3)
    runner.train()
    assert runner.optim_wrapper.skipped_steps == 2 and runner.iter == 4
    assert all(t.isfinite().all() for t in _weights(tmp_path / "iter_4.pth").values() if t.is_floating_point())


def test_unknown_nonfinite_action_fails(tiny_config, tmp_path):
    with pytest.raises(ValueError, match=r"on_nonfinite='ignore': expected one of \('stop', 'skip'\)"):
        build_runner(Config(tiny_config(on_nonfinite="ignore")), work_dir=tmp_path)


def test_a_nonfinite_model_is_never_written(tiny_config, tmp_path):
    runner = build_runner(Config(tiny_config(max_iters=2, checkpoint_interval=2, experiment_name="w")),
                          work_dir=tmp_path)
    with torch.no_grad():
        next(runner.model.parameters()).fill_(float("inf"))
    with pytest.raises(FloatingPointError, match="refusing to write checkpoint"):
        runner.save_checkpoint(str(tmp_path), "iter_9.pth")
    assert not list(tmp_path.glob("iter_9.pth*"))


def test_old_checkpoint_is_removed_only_after_the_new_one_is_written(tiny_config, tmp_path, monkeypatch):
    default_hooks = tiny_config()["default_hooks"]
    hooks = {**default_hooks, "checkpoint": {**default_hooks["checkpoint"], "interval": 1, "max_keep_ckpts": 1}}
    runner = build_runner(Config(tiny_config(max_iters=3, default_hooks=hooks, experiment_name="keep")),
                          work_dir=tmp_path)
    save = runner.save_checkpoint
    calls = []

    def dies_during_the_third_save(out_dir, filename, *args, **kwargs):
        calls.append(filename)
        if len(calls) == 3:
            (Path(out_dir) / f"{filename}.tmp").write_bytes(b"half a checkpoint")
            raise KeyboardInterrupt  # killed while writing
        save(out_dir, filename, *args, **kwargs)

    monkeypatch.setattr(runner, "save_checkpoint", dies_during_the_third_save)
    with pytest.raises(KeyboardInterrupt):
        runner.train()
    assert sorted(p.name for p in tmp_path.glob("iter_*")) == ["iter_2.pth", "iter_3.pth.tmp"]  # kept, not pruned
    assert _weights(tmp_path / "iter_2.pth")


def test_a_failed_save_leaves_no_temporary_file(tiny_config, tmp_path, monkeypatch):
    runner = build_runner(Config(tiny_config(experiment_name="full")), work_dir=tmp_path)

    def disk_full(checkpoint, filename, *args, **kwargs):
        Path(filename).write_bytes(b"partial")
        raise OSError(28, "No space left on device")

    import mmengine.runner.runner

    monkeypatch.setattr(mmengine.runner.runner, "save_checkpoint", disk_full)
    with pytest.raises(OSError, match="No space left"):
        runner.save_checkpoint(str(tmp_path), "iter_1.pth")
    assert not list(tmp_path.glob("iter_1.pth*"))


class _Exploit:
    def __reduce__(self):
        return (os.system, (f"touch {os.environ['MARKER']}",))


def test_crafted_pickles_never_run_even_when_the_environment_turns_weights_only_off(trained_tiny, tmp_path):
    """tools/test.py and --resume with TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 refuse a checkpoint that runs code."""
    marker = tmp_path / "pwned"
    crafted = tmp_path / "crafted.pth"
    os.environ["MARKER"] = str(marker)
    try:
        crafted.write_bytes(pickle.dumps({"state_dict": {}, "meta": {}, "x": _Exploit()}))
    finally:
        del os.environ["MARKER"]
    env = {**os.environ, "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1", "MARKER": str(marker)}
    for command in (
        [sys.executable, "tools/test.py", str(trained_tiny.config_file), str(crafted), "--work-dir",
         str(tmp_path / "test")],
        [sys.executable, "tools/train.py", str(trained_tiny.config_file), "--work-dir", str(tmp_path / "train"),
         "--resume", str(crafted)],
    ):
        result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode != 0 and "Weights only load failed" in result.stderr, result.stderr[-2000:]
        assert not marker.exists()


def test_loading_a_checkpoint_of_another_model_lists_what_does_not_fit(trained_tiny, tiny_config, tmp_path):
    other = tiny_config(experiment_name="other")  # a wider box head: its fc layers take other shapes
    other["model"]["box_head_module"]["fc_dim"] = 48
    other["model"]["box_predictor_module"]["in_channels"] = 48
    ckpt = str(trained_tiny.work_dir / "iter_4.pth")
    with pytest.raises(ValueError, match=r"iter_4\.pth: tensor shapes differ from MaskRCNN .*box_head\.\S*weight"):
        build_runner(Config(other), work_dir=tmp_path / "strict", load_from=ckpt, train=False).test()
    runner = build_runner(Config(other), work_dir=tmp_path / "partial", load_from=ckpt, load_partial=True)
    runner.load_or_resume()
    loaded, trained = runner.model.state_dict(), _weights(trained_tiny.work_dir / "iter_4.pth")
    assert torch.equal(loaded["backbone.simfp_2.0.weight"], trained["backbone.simfp_2.0.weight"])
    assert loaded["roi_heads.box_predictor.cls_score.weight"].shape[1] == 48  # left at its initial values


def test_resume_with_nothing_to_resume_says_so(tiny_config, tmp_path, capsys):
    runner = build_runner(Config(tiny_config(max_iters=1, experiment_name="fresh")), work_dir=tmp_path, resume=True)
    runner.train()
    assert runner.iter == 1
    (log,) = tmp_path.rglob("*.log")
    assert "nothing to resume" in log.read_text()


def test_resume_from_a_weights_only_file_explains_what_to_do(trained_tiny, tmp_path):
    weights_only = tmp_path / "weights.pth"
    torch.save({"state_dict": _weights(trained_tiny.work_dir / "iter_4.pth")}, weights_only)
    runner = build_runner(Config({**trained_tiny.config, "experiment_name": "r"}), work_dir=tmp_path,
                          resume=str(weights_only))
    with pytest.raises(ValueError, match=r"not a training checkpoint .* use --load-from"):
        runner.train()

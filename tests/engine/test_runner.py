"""Training on mmengine's Runner: exact weights-only resume, atomic checkpoints, 2-process CPU training."""

from __future__ import annotations

import copy
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config

from densevit.adapters.fpn import FPN
from densevit.adapters.vit_comer import ViTCoMer
from densevit.config import load_config, to_dotted
from densevit.datasets.demo import DEMO_CLASSES
from densevit.engine.hooks import ResumeStateHook
from densevit.engine.runner import build_runner

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.usefixtures("one_thread"),
              pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")]


def _weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    return torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]


def test_resume_continues_exactly(trained_tiny, tmp_path):
    """A fresh runner resumed from the iteration-2 checkpoint logs the same losses and ends with the same weights.

    The iteration-2 checkpoint of the uninterrupted run is exactly what a run stopped after iteration 2 leaves.
    """
    work_dir = tmp_path / "resumed"
    runner = build_runner(Config({**trained_tiny.config, "experiment_name": "resumed"}), work_dir=work_dir,
                          resume=str(trained_tiny.work_dir / "iter_2.pth"))
    runner.train()
    assert runner.iter == 4
    losses = runner.message_hub.get_scalar("train/loss").data[0].tolist()
    assert len(trained_tiny.losses) == 4 and len(losses) == 4  # iterations 1-2 come back from the checkpoint
    assert losses == trained_tiny.losses  # iterations 3-4 bit for bit
    resumed, uninterrupted = _weights(work_dir / "iter_4.pth"), _weights(trained_tiny.work_dir / "iter_4.pth")
    assert resumed.keys() == uninterrupted.keys()
    for name, tensor in uninterrupted.items():
        assert torch.equal(resumed[name], tensor), name


def test_resume_restores_the_numpy_and_python_generators(tmp_path):
    """After a resume the training process's numpy and Python generators go on as they would have (torch's too)."""
    hook, checkpoint = ResumeStateHook(), {}
    np.random.seed(5)
    random.seed(5)
    hook.before_save_checkpoint(None, checkpoint)
    expected = np.random.rand(), random.random()
    torch.save(checkpoint, tmp_path / "state.pth")
    np.random.seed(9)
    random.seed(9)
    hook.after_load_checkpoint(None, torch.load(tmp_path / "state.pth", weights_only=True))
    hook.before_train_iter(None, 0)
    assert (np.random.rand(), random.random()) == expected


def test_same_seed_gives_the_same_run(trained_tiny, tmp_path):
    """Training anew with the config's seed repeats the run: initial weights included, every loss bit for bit."""
    runner = build_runner(Config({**trained_tiny.config, "experiment_name": "again"}), work_dir=tmp_path)
    runner.train()
    assert runner.message_hub.get_scalar("train/loss").data[0].tolist() == trained_tiny.losses
    again, first = _weights(tmp_path / "iter_4.pth"), _weights(trained_tiny.work_dir / "iter_4.pth")
    for name, tensor in first.items():
        assert torch.equal(again[name], tensor), name


def test_checkpoints_are_complete_and_weights_only(trained_tiny):
    names = sorted(p.name for p in trained_tiny.work_dir.iterdir() if p.is_file())
    assert not [n for n in names if n.endswith(".tmp")], names
    assert {"iter_2.pth", "iter_4.pth", "last_checkpoint"} <= set(names)
    checkpoint = torch.load(trained_tiny.work_dir / "iter_4.pth", map_location="cpu", weights_only=True)
    assert checkpoint["meta"]["iter"] == 4 and "optimizer" in checkpoint and "rng_state" in checkpoint
    assert tuple(checkpoint["meta"]["dataset_meta"]["classes"]) == DEMO_CLASSES
    assert (trained_tiny.work_dir / "last_checkpoint").read_text().strip().endswith("iter_4.pth")


def test_config_built_in_python_dumps_as_a_loadable_file(trained_tiny):
    """Classes in a Config(dict) become import paths in the runner's copy, so the dump loads and builds."""
    cfg = load_config(trained_tiny.config_file)
    assert cfg.model.type == "densevit.models.mask_rcnn.MaskRCNN"
    run = build_runner(cfg, work_dir=trained_tiny.work_dir / "reloaded", train=False)
    assert type(run.model.model).__name__ == "MaskRCNN" and "MaskRCNN" in run.cfg.pretty_text


def test_two_process_cpu_training_keeps_ranks_in_sync(trained_tiny, tmp_path):
    """torchrun with 2 CPU processes (gloo) runs tools/train.py to the end and both ranks hold the same weights.

    The backbone is a tiny ViT-CoMer: it has BatchNorm layers, which must not become SyncBatchNorm on a CPU.
    """
    model = copy.deepcopy(trained_tiny.config["model"])
    vit = dict(model["backbone"]["backbone"], layer_scale_init=1.0)
    model["backbone"] = dict(type=FPN, out_channels=model["backbone"]["out_channels"], backbone=dict(
        type=ViTCoMer, backbone=vit, interaction_indexes=((0, 0), (1, 1)), conv_inplane=16, deform_num_heads=2,
        vit_feature="final"))
    cfg = {**trained_tiny.config, "model": model, "experiment_name": "ddp",
           "custom_hooks": [dict(type="rank_state_hook.RankStateHashHook")],  # tests/engine/rank_state_hook.py
           "train_cfg": dict(trained_tiny.config["train_cfg"], max_iters=2)}
    config_file = tmp_path / "ddp.py"
    Config(to_dotted(cfg)).dump(str(config_file))
    work_dir = tmp_path / "work"
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(Path(__file__).parent), os.environ.get("PYTHONPATH")])))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               str(ROOT / "tools" / "train.py"), str(config_file), "--work-dir", str(work_dir), "--launcher", "pytorch"]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    assert (work_dir / "iter_2.pth").is_file()
    hashes = [(work_dir / f"rank{r}.txt").read_text() for r in (0, 1)]
    assert hashes[0] == hashes[1]
    assert any("running_mean" in name for name in _weights(work_dir / "iter_2.pth"))

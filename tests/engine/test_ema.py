"""An exponential moving average (EMA) of the weights, as SwinIR / BasicSR train: mmengine's ``EMAHook`` on densevit's
Runner, its checkpoints, tools/test.py and ``init_model``."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any, NamedTuple

import cv2
import numpy as np
import pytest
import torch
from conftest import write_config
from mmengine.config import Config
from mmengine.dataset import DefaultSampler, InfiniteSampler
from mmengine.hooks import CheckpointHook, EMAHook, Hook, LoggerHook
from torch.optim import Adam

from densevit.adapters.simple_pyramid import SimpleFeaturePyramid
from densevit.apis import init_model
from densevit.backbones.vit import ViT
from densevit.config import build, load_config
from densevit.datasets.restoration import PairedImageDataset
from densevit.engine.data import DataPreprocessor
from densevit.engine.model import RunnerModel
from densevit.engine.runner import build_runner
from densevit.evaluation.restoration import RestorationEvaluator
from densevit.models.restoration import ImageRestorer, l1_loss

ROOT = Path(__file__).resolve().parents[2]
DECAY = 0.9  # far from 1, so that four steps of the average differ clearly from any one step's weights
Weights = dict[str, torch.Tensor]

pytestmark = [pytest.mark.usefixtures("one_thread"),
              pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")]


class WeightProbe(Hook):
    """Records the trained weights after every step and the weights validation runs with (after ``EMAHook``'s
    swap: a lower priority runs later)."""

    priority = "LOW"
    trained: list[Weights]
    validated: list[Weights]
    metrics: list[dict]

    def __init__(self) -> None:
        self.trained, self.validated, self.metrics = [], [], []

    def after_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        self.trained.append(_params(runner.model.model))

    def before_val_epoch(self, runner: Any) -> None:
        self.validated.append(_params(runner.model.model))

    def after_val_epoch(self, runner: Any, metrics: dict | None = None) -> None:
        self.metrics.append(dict(metrics or {}))


def _params(model: torch.nn.Module) -> Weights:
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def _write_pairs(root: Path, count: int) -> None:
    rng = np.random.default_rng(0)
    for folder in ("gt", "lq"):
        (root / folder).mkdir(parents=True)
    for i in range(count):
        gt = cv2.GaussianBlur(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8), (5, 5), 0)
        lq = np.clip(gt + rng.normal(0, 20, gt.shape), 0, 255).astype(np.uint8)
        cv2.imwrite(str(root / "gt" / f"{i}.png"), gt)
        cv2.imwrite(str(root / "lq" / f"{i}.png"), lq)


def _config(data: Path, ema: bool = True) -> dict[str, Any]:
    """A denoiser on a 2-block, 64-wide ViT, 4 steps on whole 32 px images (no random crops: resuming is exact),
    checkpoints after steps 2 and 4, validation after step 4."""
    train_set = dict(type=PairedImageDataset, gt_dir=f"{data}/train/gt", lq_dir=f"{data}/train/lq", name="train")
    val_set = dict(type=PairedImageDataset, gt_dir=f"{data}/val/gt", lq_dir=f"{data}/val/lq", name="val")
    val_loader = dict(batch_size=2, num_workers=0, sampler=dict(type=DefaultSampler, shuffle=False), dataset=val_set)
    evaluator = dict(type=RestorationEvaluator)
    return dict(
        model=dict(type=ImageRestorer, scale=1, channels=16, shallow_blocks=1, fuse_blocks=1, loss_fn=l1_loss,
                   backbone=dict(type=SimpleFeaturePyramid, out_channels=16, scale_factors=(4.0, 2.0, 1.0),
                                 top_block=False,
                                 backbone=dict(type=ViT, img_size=32, embed_dim=64, depth=2, num_heads=2))),
        data_preprocessor=dict(type=DataPreprocessor, size_divisor=1),
        train_dataloader=dict(batch_size=2, num_workers=0, persistent_workers=False,
                              sampler=dict(type=InfiniteSampler, shuffle=True), dataset=train_set),
        val_dataloader=val_loader, val_evaluator=evaluator, test_dataloader=val_loader, test_evaluator=evaluator,
        optimizer=dict(type=Adam, lr=1e-3),
        train_cfg=dict(by_epoch=False, max_iters=4, val_interval=4),
        default_hooks=dict(checkpoint=dict(type=CheckpointHook, by_epoch=False, interval=2),
                           logger=dict(type=LoggerHook, interval=1)),
        custom_hooks=[dict(type=EMAHook, momentum=1 - DECAY)] if ema else [],
        randomness=dict(seed=0),
    )


class EMARun(NamedTuple):
    config: dict[str, Any]
    config_file: Path
    work_dir: Path
    probe: WeightProbe


def _train(cfg: dict[str, Any], work_dir: Path, resume: str | bool = False) -> WeightProbe:
    probe = WeightProbe()
    # mmengine names its logger after the run: a unique name per run (the default is the start second)
    name = f"{work_dir.parent.name}_{work_dir.name}"
    runner = build_runner(Config({**cfg, "experiment_name": name}), work_dir=work_dir, resume=resume)
    runner.register_hook(probe)
    runner.train()
    return probe


@pytest.fixture(scope="module")
def ema_run(tmp_path_factory) -> EMARun:
    """Four steps with an EMA of decay 0.9; the probe's records of the trained and validated weights."""
    root = tmp_path_factory.mktemp("ema")
    _write_pairs(root / "data" / "train", 4)
    _write_pairs(root / "data" / "val", 2)
    cfg = _config(root / "data")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        probe = _train(cfg, root / "work")
    finally:
        torch.set_num_threads(threads)
    return EMARun(cfg, write_config({**cfg, "experiment_name": "ema_test"}, root / "ema.py"), root / "work", probe)


def _checkpoint(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def expected_ema(trained: list[Weights], decay: float, begin_iter: int = 0) -> Weights:
    """mmengine's ``EMAHook`` (``ExponentialMovingAverage``), computed independently in float64: the average is the
    weights themselves up to step max(begin_iter, 1), then ema = decay * ema + (1 - decay) * weights each step."""
    ema: Weights = {}
    for step, weights in enumerate(trained, start=1):
        for name, value in weights.items():
            value = value.double()
            ema[name] = value if step <= max(begin_iter, 1) else decay * ema[name] + (1 - decay) * value
    return ema


def _assert_close(actual: Weights, expected: Weights) -> None:
    assert expected.keys() <= actual.keys()
    for name, value in expected.items():
        torch.testing.assert_close(actual[name].double(), value, rtol=1e-5, atol=1e-7, msg=name)


def _farthest(a: Weights, b: Weights) -> float:
    return max((a[k].double() - b[k].double()).abs().max().item() for k in b)


def test_the_average_follows_the_decay_after_every_step(ema_run):
    """The checkpoints' state_dict is the average of the steps so far; ema_state_dict the trained weights."""
    trained = ema_run.probe.trained
    assert len(trained) == 4
    for step in (2, 4):
        checkpoint = _checkpoint(ema_run.work_dir / f"iter_{step}.pth")
        ema = expected_ema(trained[:step], DECAY)
        _assert_close(checkpoint["state_dict"], ema)
        raw = {k.removeprefix("module."): v for k, v in checkpoint["ema_state_dict"].items()}
        assert int(raw.pop("steps")) == step
        for name, value in trained[step - 1].items():
            assert torch.equal(raw[name], value), name
        assert checkpoint["state_dict"].keys() == raw.keys()  # unprefixed, as every densevit checkpoint
    final = expected_ema(trained, DECAY)
    assert _farthest(final, trained[-1]) > 1e-4 and _farthest(final, trained[0]) > 1e-4  # a real average


def test_warm_up_copies_the_weights_until_begin_iter():
    """``begin_iter``: the average is the weights themselves until that step, then averages from there."""
    model = RunnerModel(build(_config(Path("unused"))["model"], "model"))
    hook = EMAHook(momentum=1 - DECAY, begin_iter=3)
    runner = SimpleNamespace(model=model, iter=0, max_iters=6)
    hook.before_run(runner)
    trained = []
    for runner.iter in range(6):  # after_train_iter sees the iteration index, from 0
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        hook.after_train_iter(runner, runner.iter)
        trained.append(_params(model.model))
        _assert_close(_params(hook.ema_model.module.model), expected_ema(trained, DECAY, begin_iter=3))


def test_validation_scores_the_average(ema_run):
    """During validation the model holds the average; after it, the trained weights again."""
    (validated,) = ema_run.probe.validated
    _assert_close(validated, expected_ema(ema_run.probe.trained, DECAY))
    assert _farthest(validated, ema_run.probe.trained[-1]) > 1e-4


def test_resume_continues_the_average_exactly(ema_run, tmp_path):
    work_dir = tmp_path / "resumed"
    probe = _train(ema_run.config, work_dir, resume=str(ema_run.work_dir / "iter_2.pth"))
    assert len(probe.trained) == 2  # steps 3 and 4
    resumed, uninterrupted = _checkpoint(work_dir / "iter_4.pth"), _checkpoint(ema_run.work_dir / "iter_4.pth")
    for key in ("state_dict", "ema_state_dict"):
        assert resumed[key].keys() == uninterrupted[key].keys()
        for name, value in uninterrupted[key].items():
            assert torch.equal(resumed[key][name], value), (key, name)
    assert probe.metrics == ema_run.probe.metrics


def _tool(monkeypatch, name: str, *args: object) -> None:
    monkeypatch.setattr(sys, "argv", [name, *map(str, args)])
    runpy.run_path(str(ROOT / "tools" / name), run_name="__main__")


def test_tools_and_init_model_use_the_average(ema_run, tmp_path, monkeypatch, capsys):
    """tools/test.py scores what validation scored and says which weights those are; init_model loads the average;
    tools/infer.py says so."""
    checkpoint = ema_run.work_dir / "iter_4.pth"
    _tool(monkeypatch, "test.py", ema_run.config_file, checkpoint, "--work-dir", tmp_path)
    assert "exponential moving average (EMA)" in capsys.readouterr().out
    tested = json.loads((tmp_path / "metrics.json").read_text())
    (validated,) = ema_run.probe.metrics
    assert tested["psnr"] == pytest.approx(validated["psnr"], abs=1e-9)

    model = init_model(load_config(ema_run.config_file), checkpoint)
    assert "exponential moving average (EMA)" in model.weights_note
    _assert_close(_params(model.model), expected_ema(ema_run.probe.trained, DECAY))

    image = next((ema_run.config_file.parent / "data" / "val" / "lq").iterdir())
    _tool(monkeypatch, "infer.py", ema_run.config_file, checkpoint, image, "--out-dir", tmp_path / "infer")
    assert f"{checkpoint}: {model.weights_note}" in capsys.readouterr().out


def _without_ema(checkpoint: dict) -> dict:
    """The checkpoint a run without EMA would have written: the trained weights as state_dict."""
    trained = {k.removeprefix("module."): v for k, v in checkpoint.pop("ema_state_dict").items() if k != "steps"}
    return {**checkpoint, "state_dict": trained}


def test_checkpoint_without_ema_still_loads(ema_run, tmp_path):
    """A training checkpoint without EMA, and bare weights (a converted file), load under an EMA config too."""
    old, bare = tmp_path / "old.pth", tmp_path / "bare.pth"
    torch.save(_without_ema(_checkpoint(ema_run.work_dir / "iter_2.pth")), old)
    torch.save(torch.load(old, weights_only=True)["state_dict"], bare)
    model = init_model(load_config(ema_run.config_file), old)
    assert model.weights_note is None
    for name, value in _params(model.model).items():
        assert torch.equal(value, ema_run.probe.trained[1][name]), name
    runner = build_runner(Config({**ema_run.config, "experiment_name": "old_test"}), work_dir=tmp_path / "test",
                          load_from=str(bare), train=False)
    assert "psnr" in runner.test()
    # resumed under an EMA config, the average starts again from the weights resumed
    probe = _train(ema_run.config, tmp_path / "resumed", resume=str(old))
    _assert_close(_checkpoint(tmp_path / "resumed" / "iter_4.pth")["state_dict"], expected_ema(probe.trained, DECAY))


def test_resuming_an_ema_run_without_the_hook_is_refused(ema_run, tmp_path):
    """Without the hook nothing swaps the trained weights back: training would go on from the average."""
    cfg = {**ema_run.config, "custom_hooks": [], "experiment_name": "no_hook"}
    runner = build_runner(Config(cfg), work_dir=tmp_path, resume=str(ema_run.work_dir / "iter_2.pth"))
    with pytest.raises(ValueError, match=r"iter_2.pth: the run kept an EMA .* custom_hooks"):
        runner.train()


@pytest.mark.parametrize(("name", "ema"), [
    *[(f"sr_x{s}_vit_b_sfp_df2k", True) for s in (2, 3, 4)],
    ("sr_x4_vit_comer_b_df2k", True),
    ("sr_x4_vit_b_sfp_div2k", True),
    ("denoise_vit_b_sfp_blind", False),  # Restormer's recipes keep no average
    ("deblur_gopro_vit_b_sfp", False),
])
def test_restoration_configs_follow_their_recipes(name, ema):
    """SwinIR's SR recipes keep an EMA of decay 0.999 (mmengine's momentum 0.001); Restormer's do not."""
    hooks = load_config(ROOT / "configs" / "restoration" / f"{name}.py").get("custom_hooks") or []
    momenta = [h["momentum"] for h in hooks if h["type"] is EMAHook]
    assert momenta == ([pytest.approx(0.001)] if ema else [])


def test_with_gradient_accumulation_the_average_updates_once_per_optimiser_step(tmp_path):
    """``accumulative_counts=2``: the weights change every second iteration, and so does the average (mmengine's
    own hook, which the Runner replaces, would average the unchanged weights twice)."""
    _write_pairs(tmp_path / "data" / "train", 4)
    _write_pairs(tmp_path / "data" / "val", 2)
    probe = _train({**_config(tmp_path / "data"), "accumulative_counts": 2}, tmp_path / "work")
    trained = probe.trained
    assert _farthest(trained[0], trained[1]) > 1e-4 and _farthest(trained[1], trained[2]) == 0  # steps at 2 and 4
    checkpoint = _checkpoint(tmp_path / "work" / "iter_4.pth")
    _assert_close(checkpoint["state_dict"], expected_ema([trained[1], trained[3]], DECAY))
    assert int(checkpoint["ema_state_dict"]["steps"]) == 2

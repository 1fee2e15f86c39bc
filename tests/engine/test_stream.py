"""The training stream: mmengine's sample order from any start, per-sample seeding, and resumption that loads no
trained sample and continues exactly with data-loader workers."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import train_one_thread
from mmengine.config import Config
from mmengine.dataset import InfiniteSampler

from densevit.datasets.coco import CocoDetection
from densevit.engine.runner import build_runner
from densevit.engine.stream import IterTrainLoop, PositionSeeded, ResumableInfiniteSampler, StreamIndex

pytestmark = [pytest.mark.usefixtures("one_thread"),
              pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")]


def _weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    return torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]


def _losses(runner) -> list[float]:
    return runner.message_hub.get_scalar("train/loss").data[0].tolist()


@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("rank", [0, 1])
def test_sampler_keeps_mmengines_order_from_any_start(shuffle, rank, monkeypatch):
    """Process ``rank`` of 2 gets InfiniteSampler's indices, from any start (across passes) without the earlier ones."""
    monkeypatch.setattr("mmengine.dataset.sampler.get_dist_info", lambda: (rank, 2))
    data = range(5)
    expected = list(itertools.islice(InfiniteSampler(data, shuffle=shuffle, seed=3), 20))
    sampler = ResumableInfiniteSampler(data, shuffle=shuffle, seed=3)
    stream = list(itertools.islice(sampler, 20))
    assert [s.index for s in stream] == expected
    assert [s.position for s in stream] == [rank + 2 * j for j in range(20)] and {s.seed for s in stream} == {3}
    for start in (1, 4, 13):
        sampler.start = start
        assert list(itertools.islice(sampler, 20 - start)) == stream[start:]
    sampler.start = None  # held: nothing until positioned
    assert list(sampler) == []


class _Draws:
    """A dataset whose items are draws from the three global generators."""

    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> tuple[float, float, float, int]:
        return np.random.rand(), random.random(), torch.rand(()).item(), index


def test_a_sample_is_augmented_alike_whatever_ran_before():
    data = PositionSeeded(_Draws())
    first = data[StreamIndex(2, position=7, seed=0)]
    np.random.seed(123)
    random.seed(123)
    torch.manual_seed(123)
    expected_next = np.random.rand(), random.random(), torch.rand(()).item()
    np.random.seed(123)
    random.seed(123)
    torch.manual_seed(123)
    again = data[StreamIndex(2, position=7, seed=0)]
    assert again == first and first[3] == 2
    # the caller's generators go on as if the sample had not been loaded
    assert (np.random.rand(), random.random(), torch.rand(()).item()) == expected_next
    others = {data[StreamIndex(2, position=8, seed=0)], data[StreamIndex(2, position=7, seed=1)]}
    assert first not in others and len(others) == 2
    assert data[1][3] == 1 and len(data) == 4  # a plain index is served as is


@pytest.fixture(scope="module")
def trained_with_workers(tmp_path_factory, tiny_config):
    """The tiny run of ``trained_tiny`` (random flips, scales and crops) with 2 persistent workers."""
    work_dir = tmp_path_factory.mktemp("workers")
    cfg = tiny_config(experiment_name="workers")
    cfg["train_dataloader"] = dict(cfg["train_dataloader"], num_workers=2, persistent_workers=True)
    return cfg, work_dir, _losses(train_one_thread(cfg, work_dir))


def test_batches_do_not_depend_on_the_number_of_workers(trained_with_workers, trained_tiny):
    """Each sample is seeded by its place in the stream: 2 workers train exactly as the main process alone."""
    _, work_dir, losses = trained_with_workers
    assert losses == trained_tiny.losses
    for name, tensor in _weights(trained_tiny.work_dir / "iter_4.pth").items():
        assert torch.equal(_weights(work_dir / "iter_4.pth")[name], tensor), name


@pytest.mark.parametrize("persistent", [True, False])
def test_resume_with_workers_continues_exactly(trained_with_workers, persistent, tmp_path):
    """Iterations 3-4 resumed from the iteration-2 checkpoint with 2 workers: the same losses and weights, bit for
    bit, as the run that went straight through."""
    cfg, work_dir, losses = trained_with_workers
    cfg = dict(cfg, experiment_name="resumed",
               train_dataloader=dict(cfg["train_dataloader"], persistent_workers=persistent))
    runner = build_runner(Config(cfg), work_dir=tmp_path, resume=str(work_dir / "iter_2.pth"))
    runner.train()
    assert _losses(runner) == losses
    for name, tensor in _weights(work_dir / "iter_4.pth").items():
        assert torch.equal(_weights(tmp_path / "iter_4.pth")[name], tensor), name


@pytest.mark.parametrize("num_workers", [0, 2])
def test_resume_loads_no_sample_already_trained_on(trained_tiny, num_workers, tmp_path, monkeypatch):
    """Resumed after 2 batches of 2, the loader reads from the stream's 5th sample on: the first 4 are never loaded
    (workers read ahead, but only past the start)."""
    log = tmp_path / "loaded.txt"
    load = CocoDetection.__getitem__

    def recording(self, index):  # appends from every worker process (forked after the patch)
        with open(log, "a") as f:
            f.write(f"{index}\n")
        return load(self, index)

    monkeypatch.setattr(CocoDetection, "__getitem__", recording)
    cfg = {**trained_tiny.config, "experiment_name": "counted", "train_cfg": dict(by_epoch=False, max_iters=3),
           "train_dataloader": dict(trained_tiny.config["train_dataloader"], num_workers=num_workers)}
    runner = build_runner(Config(cfg), work_dir=tmp_path, resume=str(trained_tiny.work_dir / "iter_2.pth"))
    runner.train()
    assert isinstance(runner.train_loop, IterTrainLoop)
    sampler = runner.train_loop.dataloader.sampler
    assert isinstance(sampler, ResumableInfiniteSampler)  # the config names mmengine's InfiniteSampler
    sampler.start = 0
    stream = [s.index for s in itertools.islice(sampler, 16)]  # one pass over the 16 images
    loaded = [int(line) for line in log.read_text().split()]
    if num_workers == 0:
        assert loaded == stream[4:6]
    else:
        assert set(stream[4:6]) <= set(loaded) and not set(loaded) & set(stream[:4]), (loaded, stream)

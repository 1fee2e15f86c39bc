"""The training stream: samples drawn in a seeded endless order, each augmented under its own seed, so that a
resumed run starts at the first sample not trained on without loading the ones before it.

mmengine resumes an iteration-based run by drawing every batch already trained on again: each is loaded and
augmented, only to restore the workers' random state (hours on COCO). Here a sample's randomness is a function of
the run's seed and its place in the stream, not of whichever worker process loaded it after whichever others:

- ``ResumableInfiniteSampler`` yields mmengine's ``InfiniteSampler`` order, each index tagged with its position
  and the seed, from any position (``start``) without going through the earlier ones.
- ``PositionSeeded`` (the runner wraps the training set in it) seeds numpy's, Python's and torch's generators from
  (seed, position) around each sample, so a sample is augmented alike in any worker, in any run that reaches it.
- ``IterTrainLoop`` positions the sampler at ``iteration x batch_size`` on resume instead of replaying.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator, Sized
from typing import Any, NamedTuple

import numpy as np
import torch
from mmengine.dataset import InfiniteSampler
from mmengine.logging import print_log
from mmengine.runner import IterBasedTrainLoop
from torch.utils.data import DataLoader, Dataset

__all__ = ["IterTrainLoop", "PositionSeeded", "ResumableInfiniteSampler", "StreamIndex", "seed_generators"]


class StreamIndex(NamedTuple):
    """A dataset index as the training stream draws it: its position in the stream (over all processes) and the
    run's seed, which together fix the sample's augmentation."""

    index: int
    position: int
    seed: int


def seed_generators(seed: int, position: int) -> None:
    """Seed numpy's, Python's and torch's (CPU) global generators for the sample at ``position`` of a run seeded
    ``seed``; independent streams for every (seed, position)."""
    words = [int(w) for w in np.random.SeedSequence((seed, position)).generate_state(6)]  # 6 x 32 bits
    np.random.seed(words[:2])
    random.seed(words[2] << 32 | words[3])
    # not torch.manual_seed: that would reseed the GPUs too, whose state a sample has no business touching
    torch.default_generator.manual_seed(words[4] << 32 | words[5])


class ResumableInfiniteSampler(InfiniteSampler):
    """mmengine's ``InfiniteSampler`` (the same endless, per-pass shuffled order, split over the processes) that
    yields ``StreamIndex`` items for ``PositionSeeded`` and starts after ``start`` samples of this process.

    ``start=None`` holds it (it yields nothing) until the loop knows where a resumed run starts.
    """

    def __init__(self, dataset: Sized, shuffle: bool = True, seed: int | None = None) -> None:
        super().__init__(dataset, shuffle=shuffle, seed=seed)
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"ResumableInfiniteSampler: seed {self.seed!r}; expected a non-negative integer "
                             "(randomness.seed in the config)")
        self.start: int | None = 0

    def _order(self, generator: torch.Generator) -> list[int]:
        # one permutation per pass, drawn from the generator exactly as InfiniteSampler draws it
        return torch.randperm(self.size, generator=generator).tolist() if self.shuffle else list(range(self.size))

    def _stream(self, first: int) -> Iterator[StreamIndex]:
        """The stream of all processes from global position ``first``."""
        generator = torch.Generator()
        generator.manual_seed(self.seed)
        passes, offset = divmod(first, self.size)
        for _ in range(passes):  # the skipped passes' permutations are drawn, so the later ones stay the same
            self._order(generator)
        position = first - offset
        while True:
            order = self._order(generator)
            for i in range(offset, self.size):
                yield StreamIndex(order[i], position + i, self.seed)
            position, offset = position + self.size, 0

    def __iter__(self) -> Iterator[StreamIndex]:
        """This process's share of the stream, from its ``start``-th sample."""
        if self.start is None:
            return iter(())
        # process r of W takes positions r, r + W, r + 2W, ...
        return itertools.islice(self._stream(self.rank + self.start * self.world_size), 0, None, self.world_size)


class PositionSeeded(Dataset):
    """Serve ``dataset`` for ``ResumableInfiniteSampler``: each ``StreamIndex`` item is loaded and augmented under
    the generators seeded from its (seed, position), and the caller's generator states are restored after it (in
    a loader without workers they are the training process's own). A plain integer index is served as is."""

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, item: StreamIndex | int) -> Any:
        if not isinstance(item, StreamIndex):
            return self.dataset[item]
        saved = np.random.get_state(), random.getstate(), torch.get_rng_state()
        try:
            seed_generators(item.seed, item.position)
            return self.dataset[item.index]
        finally:
            np.random.set_state(saved[0])
            random.setstate(saved[1])
            torch.set_rng_state(saved[2])

    def __getattr__(self, name: str) -> Any:
        # classes, metainfo, ann_file ... are the wrapped dataset's
        if name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)


class IterTrainLoop(IterBasedTrainLoop):
    """mmengine's iteration-based loop that resumes by starting a ``ResumableInfiniteSampler`` at the first sample
    not trained on, instead of loading every batch already trained on again.

    mmengine opens the loader's iterator when the loop is built (before a resume says where to start), and with
    workers that reads ahead; the sampler is held until ``run`` positions it. A loader with another sampler (or a
    batch sampler of its own) resumes as mmengine does.
    """

    def __init__(self, runner: Any, dataloader: DataLoader | dict, max_iters: int, **kwargs: Any) -> None:
        if isinstance(dataloader, dict):  # built here, as mmengine's BaseLoop would, to hold its sampler first
            dataloader = runner.build_dataloader(
                dataloader, seed=runner.seed, diff_rank_seed=runner._randomness_cfg.get("diff_rank_seed", False))
        sampler = dataloader.sampler
        self._sampler = sampler if isinstance(sampler, ResumableInfiniteSampler) and dataloader.batch_size else None
        if self._sampler is not None:
            self._sampler.start = None
        super().__init__(runner, dataloader, max_iters, **kwargs)

    def run(self) -> torch.nn.Module:
        """Train from the current iteration (0, or the resumed one)."""
        if self._sampler is not None:
            self._sampler.start = self._iter * self.dataloader.batch_size
            self.dataloader_iterator = _BatchesFrom(self.dataloader, trained=self._iter)
            if self._iter:
                print_log(f"resume: the sampler starts at sample {self._sampler.start} of this process; the "
                          f"{self._iter} batches already trained on are not loaded again", logger="current")
        return super().run()


class _BatchesFrom:
    """The loop's batches once the sampler is positioned. mmengine's ``run`` asks for the ``trained`` batches first
    (its replay); they are answered with None at once. The loader is opened on the first real request."""

    def __init__(self, dataloader: DataLoader, trained: int) -> None:
        self.dataloader = dataloader
        self.trained = trained
        self.batches: Iterator | None = None

    def __iter__(self) -> _BatchesFrom:
        return self

    def __next__(self) -> Any:
        if self.trained:
            self.trained -= 1
            return None
        if self.batches is None:
            # a new loader iterator draws its base seed from torch's generator, a reset of persistent workers does
            # not: drawn aside, so that the model's random stream does not depend on the workers
            with torch.random.fork_rng(devices=[]):
                self.batches = iter(self.dataloader)
        return next(self.batches)

"""Hooks densevit adds to mmengine's loops: exact, weights-only-safe resumption and checkpoints that are never lost.
"""

from __future__ import annotations

import logging
import random
import sys
from collections import deque
from typing import Any

import numpy as np
import torch
from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook, EMAHook, Hook
from mmengine.logging import HistoryBuffer

__all__ = ["ConsoleHook", "ResumeStateHook", "SafeCheckpointHook", "StepEMAHook", "quiet_console"]


def _plain(value: Any) -> Any:
    """Make checkpoint metadata loadable with weights_only=True: numpy -> tensors/Python numbers."""
    if isinstance(value, HistoryBuffer):
        return {_BUFFER_TAG: True, "log": torch.from_numpy(np.asarray(value._log_history, np.float64)),
                "count": torch.from_numpy(np.asarray(value._count_history, np.float64)),
                "max_length": value.max_length}
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return type(value)((k, _plain(v)) for k, v in value.items())
    if isinstance(value, list | tuple):
        return type(value)(_plain(v) for v in value)
    return value


def _restore_buffers(value: Any) -> Any:
    if isinstance(value, dict) and value.get(_BUFFER_TAG):
        return HistoryBuffer(value["log"].numpy(), value["count"].numpy(), value["max_length"])
    if isinstance(value, dict):
        return type(value)((k, _restore_buffers(v)) for k, v in value.items())
    return value


_BUFFER_TAG = "__densevit_history_buffer__"


class ResumeStateHook(Hook):
    """Make checkpoints safe to resume and resumption exact.

    mmengine pickles its log buffers with bound methods (a ``getattr`` global that weights-only loading rightly
    refuses); they are stored as plain tensors instead and rebuilt on load. The training process's torch, numpy and
    Python RNG states are saved too and restored right before the first resumed iteration (after the data loader's
    own start-up draws); the data's randomness does not depend on them (densevit.engine.stream).
    """

    priority = "VERY_LOW"

    def __init__(self) -> None:
        self._pending: dict | None = None

    def before_save_checkpoint(self, runner: Any, checkpoint: dict) -> None:
        """Record the generators' states; turn metadata into plain data."""
        for key in ("message_hub", "meta"):
            if key in checkpoint:
                checkpoint[key] = _plain(checkpoint[key])
        name, keys, pos, has_gauss, gauss = np.random.get_state()
        state = {"torch": torch.get_rng_state(), "python": random.getstate(),
                 "numpy": (name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss)}
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        checkpoint["rng_state"] = state

    def after_load_checkpoint(self, runner: Any, checkpoint: dict) -> None:
        """Rebuild the log buffers; keep the saved RNG states until training restarts."""
        if "message_hub" in checkpoint:
            checkpoint["message_hub"] = _restore_buffers(checkpoint["message_hub"])
        self._pending = checkpoint.get("rng_state")

    def before_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None) -> None:
        """Restore the saved states once."""
        if self._pending is not None:
            torch.set_rng_state(self._pending["torch"])
            if "numpy" in self._pending:  # older checkpoints hold the torch state only
                name, keys, pos, has_gauss, gauss = self._pending["numpy"]
                np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
                random.setstate(self._pending["python"])
            if "cuda" in self._pending and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(self._pending["cuda"])
            self._pending = None


class SafeCheckpointHook(CheckpointHook):
    """mmengine's ``CheckpointHook`` that removes an old checkpoint (``max_keep_ckpts``) only once the new one is
    complete; mmengine removes it first, so a crash during the save could leave no checkpoint at all."""

    def _save_checkpoint_with_step(self, runner: Any, step: int, meta: dict) -> None:
        keep = self.max_keep_ckpts
        self.max_keep_ckpts = -1  # mmengine's own pruning, which runs before the save, is off for this call
        try:
            super()._save_checkpoint_with_step(runner, step, meta)
        finally:
            self.max_keep_ckpts = keep
        if keep <= 0 or (self.keep_ckpt_ids and self.keep_ckpt_ids[-1] == step):
            return
        kept = [*self.keep_ckpt_ids, step]
        for old in kept[:-keep]:
            path = self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(old))
            if is_main_process() and self.file_backend.isfile(path):
                self.file_backend.remove(path)
        self.keep_ckpt_ids = deque(kept[-keep:], keep)
        runner.message_hub.update_info("keep_ckpt_ids", list(self.keep_ckpt_ids))


class StepEMAHook(EMAHook):
    """mmengine's ``EMAHook`` updating the average once per optimiser step, as BasicSR and SwinIR do. mmengine's
    updates it every iteration: with ``accumulative_counts=k`` the weights change every k iterations, so it would
    average the same weights k times, a decay of momentum's k-th power per step instead of the configured one."""

    def after_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        if runner.optim_wrapper.should_update():  # this iteration's update_params stepped the optimiser
            super().after_train_iter(runner, batch_idx, data_batch, outputs)


class ConsoleHook(Hook):
    """A short console: a header (config, work dir, model size, data sizes, log file) and, on a terminal, progress
    bars with ETA for training (with the loss and learning rate), validation and testing. The full dump stays in
    the log file."""

    priority = "LOW"

    def __init__(self) -> None:
        self._bars: dict[str, Any] = {}  # "train" / "val" / "test" -> its open tqdm bar

    def before_run(self, runner: Any) -> None:
        """Print the header."""
        if runner.rank != 0:
            return
        model = runner.model.module if hasattr(runner.model, "module") else runner.model
        task = getattr(model, "model", model)
        params = sum(p.numel() for p in task.parameters()) / 1e6
        loaders = (("train", runner._train_dataloader), ("val", runner._val_dataloader),
                   ("test", runner._test_dataloader))  # built loaders, or their configs (datasets built)
        datasets = [(split, loader["dataset"] if isinstance(loader, dict) else getattr(loader, "dataset", None))
                    for split, loader in loaders if loader is not None]
        sizes = [f"{split} {len(data)} images" for split, data in datasets if hasattr(data, "__len__")]
        config = getattr(runner.cfg, "filename", None) or "(config built in Python)"
        print(f"densevit | {config} -> {runner.work_dir}\n"
              f"  model {type(task).__name__}, {params:.2f}M parameters | {', '.join(sizes) or 'no data'}\n"
              f"  full log (environment, config, every logged value): {runner.logger.log_file}", flush=True)

    def _open(self, runner: Any, name: str, total: int, initial: int = 0) -> None:
        """A bar on a terminal only (elsewhere the logger's lines show progress); a validation bar inside training
        goes when done, under the training bar that stays."""
        if runner.rank == 0 and _interactive():
            from tqdm import tqdm

            self._bars[name] = tqdm(total=total, initial=initial, desc=name, unit="it", dynamic_ncols=True,
                                    leave="train" not in self._bars)

    def _advance(self, name: str) -> None:
        if name in self._bars:
            self._bars[name].update(1)

    def _close(self, name: str) -> None:
        bar = self._bars.pop(name, None)
        if bar is not None:
            bar.close()

    def before_train(self, runner: Any) -> None:
        """Open the training bar."""
        self._open(runner, "train", runner.max_iters, runner.iter)

    def after_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        """Advance the bar; show the loss and learning rate."""
        bar = self._bars.get("train")
        if bar is not None:
            hub = runner.message_hub
            loss = hub.get_scalar("train/loss").current() if "train/loss" in hub.log_scalars else float("nan")
            lr = hub.get_scalar("train/lr").current() if "train/lr" in hub.log_scalars else float("nan")
            bar.set_postfix_str(f"loss {loss:.4g}  lr {lr:.3g}", refresh=False)
            bar.update(1)

    def after_train(self, runner: Any) -> None:
        """Close the bar."""
        self._close("train")

    def before_val_epoch(self, runner: Any) -> None:
        """Open the validation bar."""
        self._open(runner, "val", len(runner.val_loop.dataloader))

    def after_val_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        """Advance the validation bar."""
        self._advance("val")

    def after_val_epoch(self, runner: Any, metrics: dict | None = None) -> None:
        """Close the validation bar (the metrics line follows)."""
        self._close("val")

    def before_test_epoch(self, runner: Any) -> None:
        """Open the test bar."""
        self._open(runner, "test", len(runner.test_loop.dataloader))

    def after_test_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        """Advance the test bar."""
        self._advance("test")

    def after_test_epoch(self, runner: Any, metrics: dict | None = None) -> None:
        """Close the test bar."""
        self._close("test")


def _interactive() -> bool:
    return sys.stderr.isatty()


# Console lines that only repeat what the log file keeps (environment, config, hook order) or mmengine's own
# deprecation notices about its internals.
_LOG_FILE_ONLY = ("\n----", "Config:\n", "Hooks will be executed", "Distributed training is not used",
                  '"FileClient" will be deprecated', '"HardDiskBackend" is the alias', "Checkpoints will be saved",
                  "The prefix is not set in metric class")


class _ConsoleFilter(logging.Filter):
    def __init__(self, hide_progress_lines: bool) -> None:
        super().__init__()
        self.hide_progress_lines = hide_progress_lines

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message.startswith(_LOG_FILE_ONLY):
            return False
        # on a terminal the progress bars show training, validation and testing (the final metrics line, which has
        # no eta, stays); the log file keeps every line
        return not (self.hide_progress_lines and (message.startswith(("Iter(train)", "Saving checkpoint"))
                                               or (message.startswith(("Iter(val)", "Iter(test)"))
                                                   and " eta: " in message)))


def quiet_console(logger: logging.Logger) -> None:
    """Keep the environment and config dumps (and, on a terminal, the training lines) out of the console."""
    for handler in logger.handlers:
        if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
            handler.addFilter(_ConsoleFilter(hide_progress_lines=_interactive()))

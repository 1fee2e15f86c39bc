"""Hooks densevit adds to mmengine's loops: exact, weights-only-safe resumption and checkpoints that are never lost.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np
import torch
from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook, Hook
from mmengine.logging import HistoryBuffer

__all__ = ["ResumeStateHook", "SafeCheckpointHook"]


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
    refuses); they are stored as plain tensors instead and rebuilt on load. The torch RNG state is saved too and
    restored right before the first resumed iteration (after the data loader's own start-up draws).
    """

    priority = "VERY_LOW"

    def __init__(self) -> None:
        self._pending: dict | None = None

    def before_save_checkpoint(self, runner: Any, checkpoint: dict) -> None:
        """Record the generators' states; turn metadata into plain data."""
        for key in ("message_hub", "meta"):
            if key in checkpoint:
                checkpoint[key] = _plain(checkpoint[key])
        state = {"torch": torch.get_rng_state()}
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

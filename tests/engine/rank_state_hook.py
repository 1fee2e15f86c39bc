"""Test helper (imported by configs that the distributed test writes): each rank records a hash of its final weights."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper


class RankStateHashHook(Hook):
    """After training, write the sha256 of this rank's model parameters to ``work_dir/rank{rank}.txt``.

    Buffers are left out: without a GPU, BatchNorm statistics are per process.
    """

    def after_train(self, runner: Any) -> None:
        """Hash every parameter of the (unwrapped) model in name order."""
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        digest = hashlib.sha256()
        for name, tensor in sorted(model.named_parameters()):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        Path(runner.work_dir, f"rank{get_rank()}.txt").write_text(digest.hexdigest())

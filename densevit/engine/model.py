"""mmengine glue for densevit's task models: one wrapper gives any of them the Runner's interface."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
from mmengine.logging import MessageHub
from mmengine.model import BaseModel
from torch import Tensor, nn

from densevit.engine.data import DataPreprocessor
from densevit.models.base import Batch, TaskModel

__all__ = ["RunnerModel"]

_INNER = "model."


class RunnerModel(BaseModel):
    """Runs a task model (``loss`` / ``predict``) inside mmengine's loops: preprocessing and the ``mode`` dispatch.

    The wrapper is invisible in checkpoints: its state dict holds the task model's keys without a prefix, and it
    loads such files, so a checkpoint reads the same whether the task model was saved alone or through a Runner.
    """

    def __init__(self, model: nn.Module, data_preprocessor: nn.Module | None = None) -> None:
        if not isinstance(model, TaskModel):
            raise TypeError(f"RunnerModel: {type(model).__name__} is not a task model; it needs loss(batch) and "
                            "predict(batch) methods (densevit.models.base.TaskModel)")
        super().__init__(data_preprocessor=data_preprocessor if data_preprocessor is not None else DataPreprocessor())
        self.model = model
        self._register_state_dict_hook(_drop_inner_prefix)
        self._register_load_state_dict_pre_hook(_add_inner_prefix)

    def forward(self, inputs: Tensor, data_samples: list[dict] | None = None, mode: str = "tensor") -> Any:
        """mode "loss": the task model's losses; "predict": its per-image results; "tensor": its raw network."""
        if mode == "tensor":
            return self.model(inputs)
        if data_samples is None:
            raise ValueError(f"RunnerModel: mode {mode!r} needs data_samples")
        batch = Batch(inputs, list(data_samples))
        if mode == "loss":
            return self.model.loss(batch)
        if mode == "predict":
            return self.model.predict(batch)
        raise ValueError(f"RunnerModel: unknown mode {mode!r}; expected 'loss', 'predict' or 'tensor'")

    def parse_losses(self, losses: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """mmengine's sum of the ``loss*`` terms; the names of non-finite terms go to the message hub (the
        optimiser wrapper names them when it refuses the step)."""
        total, log_vars = super().parse_losses(losses)
        bad = [name for name, value in log_vars.items() if name != "loss" and not torch.isfinite(value).all()]
        MessageHub.get_current_instance().update_info("nonfinite_terms", bad)
        return total, log_vars


def _drop_inner_prefix(module: nn.Module, state: OrderedDict, prefix: str, local_metadata: dict) -> None:
    """State-dict hook: ``<prefix>model.X`` -> ``<prefix>X``, in place and in order."""
    inner = prefix + _INNER
    for key in list(state):
        value = state.pop(key)
        state[prefix + key[len(inner):] if key.startswith(inner) else key] = value


def _add_inner_prefix(state: dict, prefix: str, *args: Any) -> None:
    """Load pre-hook: a task model's ``<prefix>X`` -> ``<prefix>model.X`` (keys already prefixed stay)."""
    for key in [k for k in state if k.startswith(prefix) and not k.startswith((prefix + _INNER,
                                                                                prefix + "data_preprocessor."))]:
        state[prefix + _INNER + key[len(prefix):]] = state.pop(key)

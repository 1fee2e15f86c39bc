"""RunnerModel: the one wrapper between task models and mmengine's Runner."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from densevit.engine.data import DataPreprocessor
from densevit.engine.model import RunnerModel
from densevit.models.base import Batch


class Affine(nn.Module):
    """A task model in the smallest form: a conv whose mean output is the 'prediction'."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 1)
        self.norm = nn.BatchNorm2d(2)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(inputs))

    def loss(self, batch: Batch) -> dict[str, torch.Tensor]:
        target = torch.stack([s["target"] for s in batch.samples])
        return {"loss_l2": (self(batch.inputs).mean((1, 2, 3)) - target).square().mean()}

    def predict(self, batch: Batch) -> list[dict]:
        return [{**s, "value": v} for s, v in zip(batch.samples, self(batch.inputs).mean((1, 2, 3)), strict=True)]


def _data(n: int = 2) -> dict:
    return {"inputs": [torch.randint(0, 255, (3, 8, 8), dtype=torch.uint8) for _ in range(n)],
            "data_samples": [{"img_shape": (8, 8), "target": torch.tensor(float(i))} for i in range(n)]}


def test_state_dict_keys_are_the_task_models():
    task = Affine()
    wrapped = RunnerModel(task, DataPreprocessor(size_divisor=8))
    assert list(wrapped.state_dict()) == list(task.state_dict())
    for key, value in task.state_dict().items():
        assert wrapped.state_dict()[key].data_ptr() == value.data_ptr()


def test_loads_checkpoints_of_the_bare_task_model_strictly():
    source, target = Affine(), RunnerModel(Affine())
    nn.init.constant_(source.conv.weight, 0.5)
    source.norm.running_mean.fill_(3.0)
    target.load_state_dict(source.state_dict(), strict=True)
    torch.testing.assert_close(target.model.conv.weight, source.conv.weight)
    torch.testing.assert_close(target.model.norm.running_mean, source.norm.running_mean)
    # and a wrapper's own state dict round-trips into another wrapper
    again = RunnerModel(Affine())
    again.load_state_dict(target.state_dict(), strict=True)
    torch.testing.assert_close(again.model.conv.weight, source.conv.weight)
    with pytest.raises(RuntimeError, match="Unexpected key"):
        RunnerModel(Affine()).load_state_dict({**source.state_dict(), "head.weight": torch.zeros(1)}, strict=True)


def test_modes_dispatch_to_loss_predict_and_the_raw_network():
    torch.manual_seed(0)
    model = RunnerModel(Affine(), DataPreprocessor(size_divisor=8))
    data = model.data_preprocessor(_data(), True)
    losses = model(**data, mode="loss")
    assert set(losses) == {"loss_l2"} and losses["loss_l2"].requires_grad
    model.eval()
    preds = model(**data, mode="predict")
    assert [p["target"].item() for p in preds] == [0.0, 1.0] and all("value" in p for p in preds)
    assert model(data["inputs"], mode="tensor").shape == (2, 2, 8, 8)
    with pytest.raises(ValueError, match="unknown mode 'logits'"):
        model(**data, mode="logits")
    # mmengine's train_step runs preprocessing, the loss and the optimiser through the wrapper
    model.train()
    from mmengine.optim import OptimWrapper

    log = model.train_step(_data(), OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1)))
    assert set(log) == {"loss", "loss_l2"}


def test_refuses_a_module_without_loss_and_predict():
    with pytest.raises(TypeError, match="Conv2d is not a task model; it needs loss"):
        RunnerModel(nn.Conv2d(3, 3, 1))

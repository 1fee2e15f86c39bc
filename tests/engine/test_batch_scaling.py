"""Gradient accumulation (a step every ``accumulative_counts`` iterations, on the mean gradient) and
``auto_scale_lr`` (the lr scaled to processes x batch x accumulated iterations), through the config keys."""

from __future__ import annotations

import pytest
import torch
from mmengine.config import Config
from torch import nn

from densevit.engine.optim import build_optim_wrapper
from densevit.engine.runner import build_runner

pytestmark = [pytest.mark.usefixtures("one_thread"),
              pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")]


def optim_config(**keys) -> Config:
    return Config(dict(optimizer=dict(type=torch.optim.SGD, lr=0.1), **keys))


def test_accumulation_steps_every_k_iterations_on_the_mean_gradient():
    torch.manual_seed(0)
    model = nn.Linear(3, 1, bias=False)
    start = model.weight.detach().clone()
    wrapper = build_optim_wrapper(model, optim_config(accumulative_counts=2), amp=False)
    wrapper.initialize_count_status(model, 0, 4)
    batches = [torch.randn(2, 3) for _ in range(4)]
    weights = []
    for x in batches:
        wrapper.update_params(model(x).pow(2).mean())
        weights.append(model.weight.detach().clone())
    assert torch.equal(weights[0], start) and torch.equal(weights[2], weights[1])  # no step after 1 and 3
    # the first step: SGD on the mean of the two batches' gradients, i.e. on the gradient of both as one batch
    reference = start.clone().requires_grad_()
    both = torch.cat(batches[:2])
    (grad,) = torch.autograd.grad((both @ reference.t()).pow(2).mean(), reference)
    torch.testing.assert_close(weights[1], start - 0.1 * grad)


@pytest.mark.parametrize("counts", [0, 1.5, True])
def test_a_bad_accumulation_count_is_named(counts):
    with pytest.raises(ValueError, match=r"accumulative_counts=.*whole number"):
        build_optim_wrapper(nn.Linear(1, 1), optim_config(accumulative_counts=counts), amp=False)


def test_auto_scale_lr_counts_the_accumulated_batch(tiny_config, tmp_path):
    steps = []
    # batch 2 x 2 accumulated iterations = an effective batch of 4; the lr 4e-4 was set for 16 images
    cfg = tiny_config(max_iters=4, checkpoint_interval=100, accumulative_counts=2,
                      auto_scale_lr=dict(enable=True, base_batch_size=16), experiment_name="auto_scale_lr")
    runner = build_runner(Config(cfg), work_dir=tmp_path)
    runner.optim_wrapper.optimizer.register_step_post_hook(lambda *args: steps.append(1))
    runner.train()
    assert all(g["lr"] == pytest.approx(4e-4 * 4 / 16) for g in runner.optim_wrapper.optimizer.param_groups)
    assert len(steps) == 2  # 4 iterations, a step every second one


def test_auto_scale_lr_needs_the_base_batch(tiny_config, tmp_path):
    cfg = tiny_config(max_iters=1, auto_scale_lr=dict(enable=True), experiment_name="no_base_batch")
    with pytest.raises(ValueError, match=r"auto_scale_lr=.*needs base_batch_size"):
        build_runner(Config(cfg), work_dir=tmp_path).train()

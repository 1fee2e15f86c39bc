"""The optimiser: parameter groups (ViTDet's layer-wise lr decay, no weight decay on norms / position tables) and
mmengine optimiser wrappers that never apply a step computed from a non-finite loss or gradient."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from mmengine.logging import MessageHub, print_log
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from torch import nn

from densevit.config import build, to_plain
from densevit.layers import LayerNorm2d

__all__ = ["NONFINITE_ACTIONS", "CpuAmpOptimWrapper", "build_optim_wrapper", "param_groups"]

# what a step with a non-finite loss or gradient does: stop training with a message, or skip the step
NONFINITE_ACTIONS = ("stop", "skip")

# By type, not by class name: ``ConvNorm`` (a conv that owns a norm) must keep weight decay on its conv weight.
_NORMS = (nn.LayerNorm, nn.GroupNorm, nn.RMSNorm, nn.modules.batchnorm._NormBase, LayerNorm2d)


def _find_vit(model: nn.Module) -> tuple[str, nn.Module] | None:
    """The first submodule that numbers its layers (``layer_id``) and where it sits."""
    for name, module in model.named_modules():
        if hasattr(module, "layer_id") and hasattr(module, "depth"):
            return (name + "." if name else ""), module
    return None


def param_groups(
    model: nn.Module,
    lr: float,
    weight_decay: float,
    layer_decay: float = 1.0,
    no_decay_names: Sequence[str] = ("pos_embed",),
) -> list[dict]:
    """One group per (lr multiplier, weight decay); lr x ``layer_decay ** (L + 1 - layer_id)``.

    ``layer_id`` is 0 for the patch/position embedding, i + 1 for ViT block i and L + 1 for everything else
    (adapters, necks, heads), as ViTDet does. Norm parameters and ``no_decay_names`` get no weight decay.
    A ``layer_decay`` other than 1 on a model without a ViT is an error rather than silently ignored.
    """
    vit = _find_vit(model) if layer_decay != 1.0 else None
    if layer_decay != 1.0 and vit is None:
        raise ValueError(f"optimizer layer_decay={layer_decay} needs a plain ViT in the model (a module with "
                         f"layer_id() and depth, e.g. densevit.backbones.ViT); {type(model).__name__} has none. "
                         "Remove layer_decay from the optimizer config for Swin or timm backbones.")
    norm_params = {id(p) for m in model.modules() if isinstance(m, _NORMS) for p in m.parameters(recurse=False)}
    groups: dict[tuple[float, float], dict] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        scale = 1.0
        if vit is not None:
            prefix, net = vit
            depth = net.depth
            layer = net.layer_id(name[len(prefix):]) if name.startswith(prefix) else depth + 1
            scale = layer_decay ** (depth + 1 - layer)
        no_decay = id(p) in norm_params or any(n in name.split(".")[-1] for n in no_decay_names)
        wd = 0.0 if no_decay else weight_decay
        group = groups.setdefault((scale, wd), {"params": [], "lr": lr * scale, "weight_decay": wd, "lr_mult": scale})
        group["params"].append(p)
    return list(groups.values())


class CpuAmpOptimWrapper(OptimWrapper):
    """Mixed precision on the CPU: the forward pass runs under bf16 autocast (no loss scaling needed)."""

    @contextmanager
    def optim_context(self, model: nn.Module) -> Iterator[None]:
        """Autocast the forward pass."""
        with super().optim_context(model), torch.autocast("cpu", dtype=torch.bfloat16):
            yield


class _FiniteSteps:
    """Mixin for an mmengine optimiser wrapper: a non-finite loss or gradient never reaches the weights.

    ``on_nonfinite="stop"`` raises ``FloatingPointError`` naming the iteration and the loss terms (recorded by
    ``RunnerModel.parse_losses``); ``"skip"`` drops the step, counts it in ``skipped_steps`` and logs a warning.
    Gradients are not checked under fp16 loss scaling, whose scaler already skips overflowing steps.
    """

    on_nonfinite = "stop"
    check_gradients = True
    skipped_steps = 0

    def update_params(self, loss: torch.Tensor, step_kwargs: dict | None = None,
                      zero_kwargs: dict | None = None) -> None:
        """Backward and step as mmengine does, unless the loss or, before the step, a gradient is not finite."""
        if not torch.isfinite(loss).all():
            terms = MessageHub.get_current_instance().get_info("nonfinite_terms") or ["loss"]
            self._refuse(f"non-finite loss ({', '.join(terms)})", zero_kwargs)
            return
        self.backward(self.scale_loss(loss))
        if self.should_update():
            if self.check_gradients:
                grads = [p.grad for g in self.optimizer.param_groups for p in g["params"] if p.grad is not None]
                bad = sum(not torch.isfinite(g).all() for g in grads)
                if bad:
                    self._refuse(f"non-finite gradient in {bad} of {len(grads)} parameter tensors", zero_kwargs)
                    return
            self.step(**(step_kwargs or {}))
            self.zero_grad(**(zero_kwargs or {}))

    def _refuse(self, what: str, zero_kwargs: dict | None) -> None:
        iteration = MessageHub.get_current_instance().get_info("iter", -1) + 1
        if self.on_nonfinite == "stop":
            raise FloatingPointError(
                f"iteration {iteration}: {what}; training stopped before the step, so the weights and the last "
                "checkpoint are intact. Lower the learning rate, clip gradients (clip_grad) or set "
                "on_nonfinite='skip' in the config to skip such steps")
        self.zero_grad(**(zero_kwargs or {}))
        self.skipped_steps += 1
        print_log(f"iteration {iteration}: {what}; step skipped ({self.skipped_steps} so far)", logger="current",
                  level=logging.WARNING)


class _FiniteOptimWrapper(_FiniteSteps, OptimWrapper):
    pass


class _FiniteCpuAmpOptimWrapper(_FiniteSteps, CpuAmpOptimWrapper):
    pass


class _FiniteAmpOptimWrapper(_FiniteSteps, AmpOptimWrapper):
    check_gradients = False


def build_optim_wrapper(model: nn.Module, cfg: Any, amp: bool) -> OptimWrapper:
    """The optimiser of the config (``optimizer``, ``clip_grad``, ``on_nonfinite``, ``accumulative_counts``) in its
    mmengine wrapper.

    ``accumulative_counts=k`` accumulates the gradients of k iterations (each loss divided by k) before a step, so
    a step sees k batches: training on fewer devices than a recipe's. ``auto_scale_lr`` (``Runner.scale_lr``) then
    scales the learning rate to that effective batch.
    """
    opt = dict(to_plain(cfg.optimizer))
    layer_decay = opt.pop("layer_decay", 1.0)
    no_decay_names = opt.pop("no_decay_names", ("pos_embed",))
    opt_type = opt.pop("type", torch.optim.AdamW)
    groups = param_groups(model, opt["lr"], opt.get("weight_decay", 0.0), layer_decay, no_decay_names)
    optimizer = build({"type": opt_type, "params": groups, **opt}, "optimizer")
    clip = cfg.get("clip_grad")
    clip = dict(clip) if clip else None
    action = cfg.get("on_nonfinite", "stop")
    if action not in NONFINITE_ACTIONS:
        raise ValueError(f"config on_nonfinite={action!r}: expected one of {NONFINITE_ACTIONS}")
    counts = cfg.get("accumulative_counts", 1)
    if isinstance(counts, bool) or not isinstance(counts, int) or counts < 1:
        raise ValueError(f"config accumulative_counts={counts!r}: expected a whole number of iterations >= 1")
    if not amp:
        wrapper: OptimWrapper = _FiniteOptimWrapper(optimizer, clip_grad=clip, accumulative_counts=counts)
    elif torch.cuda.is_available():
        wrapper = _FiniteAmpOptimWrapper(optimizer=optimizer, clip_grad=clip, accumulative_counts=counts,
                                         dtype=cfg.get("amp_dtype", "float16"))
    else:
        wrapper = _FiniteCpuAmpOptimWrapper(optimizer, clip_grad=clip, accumulative_counts=counts)
    wrapper.on_nonfinite = action
    return wrapper

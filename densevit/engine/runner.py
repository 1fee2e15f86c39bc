"""Training and evaluation on mmengine's Runner, with densevit's safety fixes.

- Resume works on torch >= 2.6 with weights-only loading kept on (never ``weights_only=False``, never an
  allowlisted global): the checkpoints densevit writes hold only tensors and plain Python data.
- Checkpoints are written to a temporary file and renamed, so a crash never leaves a truncated checkpoint.
- The torch RNG state is saved and restored, so a resumed run continues exactly (RPN/RoI sampling included).
- Without a GPU the distributed backend is gloo (torchrun works on CPUs) and mixed precision is bf16 autocast.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from mmengine.config import Config
from mmengine.evaluator import Evaluator
from mmengine.hooks import Hook
from mmengine.logging import HistoryBuffer
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from mmengine.runner import Runner as _MMRunner
from mmengine.runner import set_random_seed

from densevit.config import build, to_dotted, to_plain
from densevit.engine.metric import MetricAdapter
from densevit.engine.model import RunnerModel
from densevit.engine.optim import param_groups

__all__ = ["CpuAmpOptimWrapper", "ResumeStateHook", "Runner", "build_runner"]


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


class Runner(_MMRunner):
    """mmengine's Runner with atomic checkpoint writes."""

    def save_checkpoint(self, out_dir: str, filename: str, *args: Any, **kwargs: Any) -> None:
        """Write ``filename`` through a temporary file and an atomic rename."""
        tmp = f"{filename}.tmp"
        super().save_checkpoint(out_dir, tmp, *args, **kwargs)
        if self.rank == 0:
            os.replace(os.path.join(out_dir, tmp), os.path.join(out_dir, filename))


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


class CpuAmpOptimWrapper(OptimWrapper):
    """Mixed precision on the CPU: the forward pass runs under bf16 autocast (no loss scaling needed)."""

    @contextmanager
    def optim_context(self, model: torch.nn.Module):
        """Autocast the forward pass."""
        with super().optim_context(model), torch.autocast("cpu", dtype=torch.bfloat16):
            yield


def _optim_wrapper(model: torch.nn.Module, cfg: Any, amp: bool) -> OptimWrapper:
    opt = dict(to_plain(cfg.optimizer))
    layer_decay = opt.pop("layer_decay", 1.0)
    no_decay_names = opt.pop("no_decay_names", ("pos_embed",))
    opt_type = opt.pop("type", torch.optim.AdamW)
    groups = param_groups(model, opt["lr"], opt.get("weight_decay", 0.0), layer_decay, no_decay_names)
    optimizer = build({"type": opt_type, "params": groups, **opt}, "optimizer")
    clip = cfg.get("clip_grad")
    clip = dict(clip) if clip else None
    if not amp:
        return OptimWrapper(optimizer, clip_grad=clip)
    if torch.cuda.is_available():
        return AmpOptimWrapper(optimizer=optimizer, clip_grad=clip, dtype=cfg.get("amp_dtype", "float16"))
    return CpuAmpOptimWrapper(optimizer, clip_grad=clip)


def _dataloader(cfg: Any, where: str) -> dict:
    loader = dict(to_plain(cfg))
    loader["dataset"] = build(loader["dataset"], f"{where}.dataset")
    train = where.startswith("train")
    # iteration-based training reads an endless stream; evaluation reads each image once
    loader.setdefault("sampler", {"type": "InfiniteSampler" if train else "DefaultSampler", "shuffle": train})
    loader.setdefault("collate_fn", {"type": "densevit.engine.data.collate"})
    if isinstance(loader["collate_fn"].get("type"), str) and "." in loader["collate_fn"]["type"]:
        from densevit.config import resolve_type

        loader["collate_fn"]["type"] = resolve_type(loader["collate_fn"]["type"])
    return loader


def _evaluator(cfg: Any, where: str) -> Evaluator:
    return Evaluator([MetricAdapter(build(to_plain(cfg), where))])


def build_runner(
    cfg: Any,
    *,
    work_dir: str | Path,
    resume: bool | str = False,
    load_from: str | None = None,
    amp: bool = False,
    launcher: str = "none",
    train: bool = True,
) -> Runner:
    """Build the Runner for a loaded config: model, loaders, optimiser, schedules, hooks, evaluators."""
    randomness = to_plain(cfg.get("randomness", {"seed": 0}))
    if randomness.get("seed") is not None:
        # mmengine seeds when the Runner starts, after the model exists: seed first, so the initial weights (and
        # with them the whole run) follow the config's seed
        set_random_seed(randomness["seed"], deterministic=randomness.get("deterministic", False))
    model = RunnerModel(build(to_plain(cfg.model), "model"),
                        build(to_plain(cfg.get("data_preprocessor")), "data_preprocessor"))
    kwargs: dict[str, Any] = {}
    if train:
        kwargs.update(
            train_dataloader=_dataloader(cfg.train_dataloader, "train_dataloader"),
            optim_wrapper=_optim_wrapper(model, cfg, amp),
            param_scheduler=to_plain(cfg.get("param_scheduler")),
            train_cfg=to_plain(cfg.train_cfg),
        )
    if "val_dataloader" in cfg and (train and cfg.train_cfg.get("val_interval", 0)):
        kwargs.update(
            val_dataloader=_dataloader(cfg.val_dataloader, "val_dataloader"),
            val_evaluator=_evaluator(cfg.val_evaluator, "val_evaluator"),
            val_cfg={},
        )
    if not train:
        test_loader = cfg.get("test_dataloader", cfg.get("val_dataloader"))
        test_eval = cfg.get("test_evaluator", cfg.get("val_evaluator"))
        kwargs.update(
            test_dataloader=_dataloader(test_loader, "test_dataloader"),
            test_evaluator=_evaluator(test_eval, "test_evaluator"),
            test_cfg={},
        )
    hooks = dict(to_plain(cfg.get("default_hooks", {})))
    has_bn = any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())
    distributed = launcher != "none"
    # mmengine only logs, dumps and reads a few flags from this copy; a Config(dict) holding classes would make
    # its pretty-printer fail, so the copy names them by import path (which densevit and mmengine both resolve)
    plain = cfg.to_dict() if isinstance(cfg, Config) else to_plain(cfg)
    run_cfg = Config(to_dotted(plain), filename=getattr(cfg, "filename", None))
    if distributed and torch.cuda.is_available() and has_bn:
        run_cfg.sync_bn = "torch"  # plain BatchNorm becomes SyncBatchNorm only under distributed training
    if distributed and not torch.cuda.is_available():
        # mmengine assumes a GPU per process: its torchrun set-up calls torch.cuda.set_device and it hands DDP a
        # device id. Without a GPU the process group is started here (mmengine then skips its own) and DDP
        # wraps the CPU model without device ids. SyncBatchNorm needs a GPU: BatchNorm stays per process (the
        # weights stay identical; each rank's running statistics follow its own images, rank 0's are saved).
        if launcher == "pytorch" and not torch.distributed.is_initialized():
            torch.distributed.init_process_group(backend="gloo")
        run_cfg.setdefault("model_wrapper_cfg", {"type": "MMDistributedDataParallel", "device_ids": None,
                                                 "broadcast_buffers": False,
                                                 "find_unused_parameters": cfg.get("find_unused_parameters", False)})
    if isinstance(resume, str):
        load_from, resume = resume, True
    return Runner(
        model=model,
        work_dir=str(work_dir),
        default_hooks=hooks,
        custom_hooks=[ResumeStateHook(), *to_plain(cfg.get("custom_hooks", []))],
        load_from=load_from,
        resume=bool(resume),
        launcher=launcher,
        experiment_name=cfg.get("experiment_name"),  # names the log folder; the default is the start second
        env_cfg={
            "cudnn_benchmark": False,
            "mp_cfg": {"mp_start_method": "fork", "opencv_num_threads": 0},
            "dist_cfg": {"backend": "nccl" if torch.cuda.is_available() else "gloo"},
        },
        randomness=randomness,
        log_processor={"by_epoch": False, "window_size": 20, **to_plain(cfg.get("log_processor", {}))},
        cfg=run_cfg,
        **kwargs,
    )

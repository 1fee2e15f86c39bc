"""Training and evaluation on mmengine's Runner, with densevit's safety fixes.

- Resume works on torch >= 2.6 with weights-only loading kept on (never ``weights_only=False``, never an
  allowlisted global): the checkpoints densevit writes hold only tensors and plain Python data.
- Checkpoints are written to a temporary file and renamed, so a crash never leaves a truncated checkpoint.
- The torch RNG state is saved and restored, so a resumed run continues exactly (RPN/RoI sampling included).
- Without a GPU the distributed backend is gloo (torchrun works on CPUs) and mixed precision is bf16 autocast.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch
from mmengine.config import Config
from mmengine.dataset import DefaultSampler, InfiniteSampler
from mmengine.evaluator import Evaluator
from mmengine.hooks import CheckpointHook, EMAHook
from mmengine.logging import MMLogger, print_log
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapper
from mmengine.runner import Runner as _MMRunner
from mmengine.runner import find_latest_checkpoint, set_random_seed
from mmengine.utils.dl_utils import collect_env
from torch.utils.data import DataLoader

from densevit.checkpoint import ema_note, load_state, read_checkpoint
from densevit.config import build, resolve_type, to_dotted, to_plain
from densevit.datasets.wrappers import SkipCorrupt
from densevit.engine.hooks import ConsoleHook, ResumeStateHook, SafeCheckpointHook, StepEMAHook, quiet_console
from densevit.engine.metric import MetricAdapter
from densevit.engine.model import RunnerModel
from densevit.engine.optim import build_optim_wrapper
from densevit.engine.stream import IterTrainLoop, PositionSeeded, ResumableInfiniteSampler

__all__ = ["Runner", "build_runner"]


class Runner(_MMRunner):
    """mmengine's Runner with safe checkpoints: only finite weights are written, through a temporary file and an
    atomic rename; files are read weights-only and loaded strictly (``load_partial`` for fine-tuning from another
    model); resuming says what is wrong when there is nothing, or not a training checkpoint, to resume from."""

    load_partial = False  # --load-from another model: load the tensors that fit, list the rest
    _resuming = False

    def save_checkpoint(self, out_dir: str, filename: str, *args: Any, **kwargs: Any) -> None:
        """Write ``filename`` through a temporary file and an atomic rename; refuse non-finite weights."""
        model = self.model.module if is_model_wrapper(self.model) else self.model
        broken = [name for name, t in model.state_dict().items() if t.is_floating_point() and not t.isfinite().all()]
        if broken:
            raise FloatingPointError(f"refusing to write checkpoint {filename}: {len(broken)} tensors are not "
                                     f"finite (e.g. {broken[0]}); the previous checkpoints are kept")
        tmp = f"{filename}.tmp"
        try:
            super().save_checkpoint(out_dir, tmp, *args, **kwargs)
        except BaseException:
            if self.rank == 0 and os.path.exists(os.path.join(out_dir, tmp)):
                os.remove(os.path.join(out_dir, tmp))  # a failed save (disk full) leaves nothing behind
            raise
        if self.rank == 0:
            os.replace(os.path.join(out_dir, tmp), os.path.join(out_dir, filename))

    def load_checkpoint(self, filename: str, map_location: Any = "cpu", strict: bool = True,
                        revise_keys: Any = None) -> dict:
        """Read a checkpoint weights-only and load its ``state_dict`` into the task model, strictly (mmengine's
        ``strict`` / ``revise_keys`` are superseded by ``load_partial``).

        A run with mmengine's ``EMAHook`` saves the weights' moving average as ``state_dict``: testing and
        ``--load-from`` load that average (and say so); resuming needs the hook, which swaps the trained weights
        back from ``ema_state_dict`` and restores the average where it stopped."""
        checkpoint = read_checkpoint(filename, map_location)
        if "state_dict" not in checkpoint:  # bare weights: hooks (mmengine's EMAHook) read checkpoint["state_dict"]
            checkpoint = {"state_dict": checkpoint}
        if self._resuming:
            lacking = [k for k in ("meta", "optimizer", "message_hub") if k not in checkpoint]
            if lacking or "iter" not in checkpoint["meta"]:
                raise ValueError(f"--resume {filename}: not a training checkpoint (it has no {lacking or 'meta.iter'}"
                                 "); to start a new run from its weights use --load-from")
            if "ema_state_dict" in checkpoint and not any(isinstance(h, EMAHook) for h in self.hooks):
                # only the hook swaps the trained weights back; without it training would go on from the average
                raise ValueError(f"--resume {filename}: the run kept an EMA of its weights (the checkpoint has "
                                 "ema_state_dict, and its state_dict is the average); resume it with the config's "
                                 "custom_hooks=[dict(type=EMAHook, momentum=...)], or start a new run from the "
                                 "averaged weights with --load-from")
        elif note := ema_note(checkpoint):
            self.logger.info(f"{filename}: {note}; those are the weights loaded")
        self.call_hook("after_load_checkpoint", checkpoint=checkpoint)
        model = self.model.module if is_model_wrapper(self.model) else self.model
        partial = self.load_partial and not self._resuming
        load_state(model.model, checkpoint["state_dict"], str(filename), "densevit",
                   strict=not partial, skip_mismatched=partial)
        self._has_loaded = True
        self.logger.info(f"Load checkpoint from {filename}")
        return checkpoint

    def resume(self, filename: str, *args: Any, **kwargs: Any) -> None:
        """mmengine's resume, with a clear error for a file that holds weights only."""
        self._resuming = True
        try:
            super().resume(filename, *args, **kwargs)
        finally:
            self._resuming = False

    def build_logger(self, *args: Any, **kwargs: Any) -> MMLogger:
        """mmengine's logger, with a console that leaves the dumps to the log file."""
        logger = super().build_logger(*args, **kwargs)
        quiet_console(logger)
        return logger

    def _log_env(self, env_cfg: dict) -> None:
        """The environment and config, into the log file (mmengine calls every process a "GPU", even on a CPU)."""
        runtime = {**env_cfg, **self._randomness_cfg, "seed": self._seed, "launcher": self._launcher,
                   "processes": self._world_size,
                   "device": "cuda" if torch.cuda.is_available() else f"cpu ({torch.get_num_threads()} threads)"}
        lines = [f"    {k}: {v}" for k, v in collect_env().items()] + ["", "Runtime environment:"]
        lines += [f"    {k}: {v}" for k, v in runtime.items()]
        self.logger.info("\n" + "-" * 60 + "\nSystem environment:\n" + "\n".join(lines) + "\n" + "-" * 60 + "\n")
        if self.cfg._cfg_dict:
            self.logger.info(f"Config:\n{self.cfg.pretty_text}")

    def scale_lr(self, optim_wrapper: OptimWrapper, auto_scale_lr: dict | None = None) -> None:
        """mmengine's linear scaling rule (``auto_scale_lr=dict(enable=True, base_batch_size=N)``) on the effective
        batch: processes x ``train_dataloader.batch_size`` x ``accumulative_counts``, not the per-step batch only."""
        if not auto_scale_lr or not auto_scale_lr.get("enable", False):
            return
        if "base_batch_size" not in auto_scale_lr:
            raise ValueError(f"config auto_scale_lr={auto_scale_lr}: needs base_batch_size, the batch the "
                             "optimizer's lr was set for")
        loader = self._train_dataloader
        batch = loader.batch_size if isinstance(loader, DataLoader) else loader["batch_size"]
        counts = optim_wrapper._accumulative_counts
        ratio = self.world_size * batch * counts / auto_scale_lr["base_batch_size"]
        for group in optim_wrapper.optimizer.param_groups:
            group["lr"] *= ratio
        self.logger.info(f"auto_scale_lr: effective batch {self.world_size} processes x {batch} images x {counts} "
                         f"accumulated iterations, lr set for {auto_scale_lr['base_batch_size']}: lr x {ratio:g}")

    def load_or_resume(self) -> None:
        """Resume from ``load_from`` or the work dir's latest checkpoint; with none there, say so and start anew."""
        if self._resume and self._load_from is None and not self._has_loaded:
            latest = find_latest_checkpoint(self.work_dir)
            if latest is None:
                print_log(f"--resume: nothing to resume in {self.work_dir} (no last_checkpoint file); training "
                          "starts from scratch", logger="current", level=logging.WARNING)
                self._resume = False
            else:
                self._load_from = latest
        super().load_or_resume()


def _dataloader(cfg: Any, where: str, model: torch.nn.Module, on_corrupt_image: str = "stop") -> dict:
    loader = dict(to_plain(cfg))
    dataset = loader["dataset"] = build(loader["dataset"], f"{where}.dataset")
    train = where.startswith("train")
    if on_corrupt_image not in ("stop", "skip"):
        raise ValueError(f"config on_corrupt_image={on_corrupt_image!r}: expected 'stop' or 'skip'")
    if train and on_corrupt_image == "skip":
        loader["dataset"] = SkipCorrupt(dataset)
    source = getattr(dataset, "ann_file", None) or getattr(dataset, "img_dir", None) or type(dataset).__name__
    if train and len(dataset) == 0:  # mmengine's endless sampler would spin forever on it
        raise ValueError(f"{where}.dataset: {source} gives no training sample (every image was filtered out); "
                         "check its annotations")
    classes, num_classes = getattr(dataset, "classes", None), getattr(model.model, "num_classes", None)
    if classes is not None and num_classes is not None and len(classes) != num_classes:
        raise ValueError(f"{where}.dataset: {source} has {len(classes)} classes {tuple(classes)[:8]}, but the model "
                         f"predicts {num_classes}; set the model's num_classes (and its heads') to {len(classes)}")
    # iteration-based training reads an endless stream; evaluation reads each image once
    sampler = loader["sampler"] = dict(loader.get("sampler") or {"type": ResumableInfiniteSampler if train else
                                                                   DefaultSampler, "shuffle": train})
    if isinstance(sampler.get("type"), str) and "." in sampler["type"]:
        sampler["type"] = resolve_type(sampler["type"], f"{where}.sampler.type")
    if train and sampler.get("type") in (InfiniteSampler, "InfiniteSampler") and "batch_sampler" not in loader:
        sampler["type"] = ResumableInfiniteSampler  # the same order, resumed without loading the trained batches
    if isinstance(sampler.get("type"), type) and issubclass(sampler["type"], ResumableInfiniteSampler):
        loader["dataset"] = PositionSeeded(loader["dataset"])
    loader.setdefault("collate_fn", {"type": "densevit.engine.data.collate"})
    if isinstance(loader["collate_fn"].get("type"), str) and "." in loader["collate_fn"]["type"]:
        loader["collate_fn"]["type"] = resolve_type(loader["collate_fn"]["type"])
    return loader


def _train_loop(train_cfg: dict) -> dict:
    # by_epoch=False names mmengine's IterBasedTrainLoop; its densevit subclass resumes without replaying the data
    if "type" in train_cfg or train_cfg.get("by_epoch", True):
        return train_cfg
    return {"type": IterTrainLoop, **{k: v for k, v in train_cfg.items() if k != "by_epoch"}}


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
    load_partial: bool = False,
) -> Runner:
    """Build the Runner for a loaded config: model, loaders, optimiser, schedules, hooks, evaluators.

    ``load_from`` loads strictly; ``load_partial`` loads only the tensors that fit (fine-tuning another model).
    """
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
            train_dataloader=_dataloader(cfg.train_dataloader, "train_dataloader", model,
                                         cfg.get("on_corrupt_image", "stop")),
            optim_wrapper=build_optim_wrapper(model, cfg, amp),
            param_scheduler=to_plain(cfg.get("param_scheduler")),
            train_cfg=_train_loop(to_plain(cfg.train_cfg)),
        )
    if "val_dataloader" in cfg and (train and cfg.train_cfg.get("val_interval", 0)):
        kwargs.update(
            val_dataloader=_dataloader(cfg.val_dataloader, "val_dataloader", model),
            val_evaluator=_evaluator(cfg.val_evaluator, "val_evaluator"),
            val_cfg={},
        )
    if not train:
        test_loader = cfg.get("test_dataloader", cfg.get("val_dataloader"))
        test_eval = cfg.get("test_evaluator", cfg.get("val_evaluator"))
        kwargs.update(
            test_dataloader=_dataloader(test_loader, "test_dataloader", model),
            test_evaluator=_evaluator(test_eval, "test_evaluator"),
            test_cfg={},
        )
    hooks = dict(to_plain(cfg.get("default_hooks", {})))
    if hooks.get("checkpoint", {}).get("type") in (CheckpointHook, "CheckpointHook"):
        hooks["checkpoint"] = {**hooks["checkpoint"], "type": SafeCheckpointHook}  # prunes after the save
    # mmengine's EMAHook averages every iteration; densevit's once per optimiser step (gradient accumulation)
    custom_hooks = [{**h, "type": StepEMAHook} if isinstance(h, dict) and h.get("type") in (EMAHook, "EMAHook")
                    else h for h in to_plain(cfg.get("custom_hooks", []))]
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
    runner = Runner(
        model=model,
        work_dir=str(work_dir),
        default_hooks=hooks,
        custom_hooks=[ResumeStateHook(), ConsoleHook(), *custom_hooks],
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
        auto_scale_lr=to_plain(cfg.get("auto_scale_lr")),
        cfg=run_cfg,
        **kwargs,
    )
    runner.load_partial = load_partial
    return runner

"""Config loading and building.

Configs are short Python files read by mmengine (pure-Python style): a variant imports its base with
``read_base()`` and changes fields. A component is a dict whose ``type`` is a class or function (preferred, so a
reader can jump to the code), a dotted import path (what a dumped config holds), or a short name that densevit
exports. ``build`` calls it with the other keys, building nested components first. A component's ``pretrained``
(a file path, or ``dict(path=..., converter=..., strict=..., expected_missing=...)``) is not passed on: the
file is loaded into the built module with ``densevit.checkpoint.load_weights``; ``pretrained=True`` / ``False`` is
passed on to a component that takes it (``TimmBackbone``: timm's published weights).
"""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Callable, Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

from mmengine.config import Config, ConfigDict
from torch import nn

from densevit.checkpoint import load_weights

__all__ = ["RUN_KEYS", "ConfigError", "build", "known_components", "load_config", "resolve_type", "to_dotted",
           "to_plain", "without_pretrained"]


logger = logging.getLogger(__name__)


class ConfigError(ValueError):
    """A config names an unknown component or key, or has the wrong shape."""


# The top-level keys densevit's runner and tools read. Any other top-level name in a config file (data_root,
# classes, max_iters, ...) is a helper variable: its value was written into these keys when the file ran, so an
# override of it alone would change nothing.
RUN_KEYS = frozenset({
    "model", "data_preprocessor", "train_dataloader", "val_dataloader", "test_dataloader", "val_evaluator",
    "test_evaluator", "optimizer", "clip_grad", "on_nonfinite", "amp_dtype", "param_scheduler", "train_cfg",
    "default_hooks", "custom_hooks", "log_processor", "randomness", "experiment_name", "work_dir",
    "find_unused_parameters", "auto_scale_lr", "accumulative_counts", "on_corrupt_image",
})


def load_config(path: str | Path, options: Mapping[str, Any] | None = None) -> Config:
    """Read a config file and apply ``key.sub=value`` overrides.

    An override of an unknown top-level key, or of a helper variable (not in ``RUN_KEYS``), fails and names the
    keys that hold its value. ``train_cfg.max_iters`` keeps the schedule's shape: scheduler bounds, validation and
    checkpoint intervals are scaled with it.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist")
    try:
        cfg = Config.fromfile(str(path))
    except SyntaxError as err:
        raise ConfigError(f"{path}, line {err.lineno}: {err.msg}: {(err.text or '').strip()}") from err
    if not options:
        return cfg
    for key in options:
        root = key.split(".")[0]
        if root not in cfg:
            raise ConfigError(f"--cfg-options key {key!r}: {path} has no top-level key {root!r}; "
                              f"it has {sorted(cfg.keys())}")
        if root not in RUN_KEYS:
            raise ConfigError(_helper_variable_message(cfg, key, root, path))
    old_iters = cfg.get("train_cfg", {}).get("max_iters")
    cfg.merge_from_dict(dict(options))
    if "train_cfg.max_iters" in options and old_iters:
        _scale_schedule(cfg, int(old_iters), int(cfg.train_cfg.max_iters), given=set(options))
    return cfg


def _helper_variable_message(cfg: Config, key: str, root: str, path: Path) -> str:
    value = cfg[root]
    read = {k: to_plain(cfg[k]) for k in cfg if k in RUN_KEYS}
    uses = [k for k, v in _leaves(read) if _holds(v, value)]
    where = f"its value {value!r} was written into {', '.join(uses[:6])} when the file ran" if uses else \
        f"no key densevit reads holds its value {value!r}"
    return (f"--cfg-options {key}: {root!r} is a helper variable of {path}, not a key densevit reads; {where}, so "
            f"overriding {root!r} would change nothing. Override those keys instead"
            + (" (train_cfg.max_iters rescales the schedule with it)" if root == "max_iters" else ""))


def _leaves(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, Mapping):
        return [leaf for k, v in value.items() for leaf in _leaves(v, f"{prefix}{k}.")]
    if isinstance(value, list | tuple) and any(isinstance(v, Mapping) for v in value):
        return [leaf for i, v in enumerate(value) for leaf in _leaves(v, f"{prefix}{i}.")]
    return [(prefix[:-1], value)]


def _holds(leaf: Any, value: Any) -> bool:
    if isinstance(value, str) and isinstance(leaf, str):
        return len(value) >= 3 and value in leaf
    return type(leaf) is type(value) and leaf == value


def _scale_schedule(cfg: Config, old: int, new: int, given: set[str]) -> None:
    """Scale every iteration count sized for ``old`` total iterations to ``new`` (keeping at least 1), except the
    keys overridden explicitly (``given``)."""

    def scaled(n: int) -> int:
        return max(1, min(new, round(n * new / old)))

    for scheduler in cfg.get("param_scheduler") or []:
        for bound in ("begin", "end", "T_max"):
            if isinstance(scheduler.get(bound), int):
                scheduler[bound] = scaled(scheduler[bound]) if scheduler[bound] else 0
        if scheduler.get("milestones"):
            scheduler["milestones"] = [scaled(m) for m in scheduler["milestones"]]
    if cfg.train_cfg.get("val_interval") and "train_cfg.val_interval" not in given:
        cfg.train_cfg.val_interval = scaled(cfg.train_cfg.val_interval)
    for hook in ("checkpoint", "logger"):
        if cfg.get("default_hooks", {}).get(hook, {}).get("interval") and f"default_hooks.{hook}.interval" not in given:
            cfg.default_hooks[hook].interval = min(cfg.default_hooks[hook].interval, new) if hook == "logger" \
                else scaled(cfg.default_hooks[hook].interval)
    logger.warning("train_cfg.max_iters %d -> %d: param_scheduler bounds, T_max and milestones, val_interval and the "
                   "checkpoint interval were scaled by %.4g with it", old, new, new / old)


def known_components() -> dict[str, Callable]:
    """The short names that ``type`` may use: every public class and builder densevit exports."""
    names: dict[str, Callable] = {}
    for module in ("densevit.backbones", "densevit.adapters", "densevit.heads", "densevit.models",
                   "densevit.datasets", "densevit.evaluation", "densevit.engine"):
        mod = importlib.import_module(module)
        for name in getattr(mod, "__all__", []):
            names[name] = getattr(mod, name)
    return names


def resolve_type(type_: Any, where: str = "type") -> Callable:
    """Turn a config ``type`` (class, function, dotted path or short name) into a callable."""
    if callable(type_):
        return type_
    if not isinstance(type_, str):
        raise ConfigError(f"{where}: expected a class, a function or a name, found {type_!r}")
    if "." in type_:
        module_name, _, attr = type_.rpartition(".")
        try:
            return getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as err:
            raise ConfigError(f"{where}: cannot import {type_!r} ({err})") from err
    known = known_components()
    if type_ not in known:
        raise ConfigError(f"{where}: unknown component {type_!r}; known components: {', '.join(sorted(known))}")
    return known[type_]


def _is_component(value: Any) -> bool:
    return isinstance(value, Mapping) and "type" in value


def build(cfg: Any, where: str = "cfg", **extra: Any) -> Any:
    """Build a component dict (recursively); other values are returned with their components built.

    ``where`` names the config key in error messages, e.g. ``model.backbone``. A ``pretrained`` key loads its
    file into the built module (see the module docstring); ``pretrained=None`` loads nothing.
    """
    if isinstance(cfg, Sequence) and not isinstance(cfg, str):
        return type(cfg)(build(v, f"{where}[{i}]") for i, v in enumerate(cfg))
    if not _is_component(cfg):
        if isinstance(cfg, Mapping):
            return {k: build(v, f"{where}.{k}") for k, v in cfg.items()}
        return cfg
    cfg = dict(cfg)
    target = resolve_type(cfg.pop("type"), f"{where}.type")
    pretrained = cfg.pop("pretrained", None)
    kwargs = {k: build(v, f"{where}.{k}") for k, v in cfg.items()}
    if isinstance(pretrained, bool) and _accepts(target, "pretrained"):  # the component's own switch (TimmBackbone)
        kwargs["pretrained"], pretrained = pretrained, None
    kwargs.update(extra)
    _check_keywords(target, kwargs, where)
    built = target(**kwargs)
    if pretrained is not None:
        _load_pretrained(built, pretrained, f"{where}.pretrained")
    return built


_PRETRAINED_KEYS = ("path", "converter", "strict", "expected_missing")


def _load_pretrained(module: Any, spec: Any, where: str) -> None:
    """Load a config's ``pretrained`` (a path or a dict of ``load_weights`` arguments) into the built module."""
    if not isinstance(module, nn.Module):
        raise ConfigError(f"{where}: only a component that builds an nn.Module can load weights; "
                          f"this one built a {type(module).__name__}")
    if isinstance(spec, str | PathLike):
        spec = {"path": spec}
    if not isinstance(spec, Mapping) or "path" not in spec:
        raise ConfigError(f"{where}: expected a file path or dict(path=..., converter=...), found {spec!r} (True / "
                          "False only for a component with its own pretrained switch, e.g. TimmBackbone)")
    unknown = [k for k in spec if k not in _PRETRAINED_KEYS]
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; "
                          f"accepted keys: {', '.join(_PRETRAINED_KEYS)}")
    spec = dict(spec)
    if "expected_missing" in spec:
        spec["expected_missing"] = tuple(spec["expected_missing"])
    try:
        load_weights(module, spec.pop("path"), **spec)
    except (FileNotFoundError, ValueError) as err:  # the file's own message, plus where the config names it
        raise type(err)(f"{where}: {err}") from err


def _accepts(target: Callable, name: str) -> bool:
    try:
        return name in inspect.signature(target).parameters
    except (TypeError, ValueError):
        return False


def _check_keywords(target: Callable, kwargs: Mapping[str, Any], where: str) -> None:
    try:
        params = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    accepted = [n for n, p in params.items() if p.kind is not inspect.Parameter.VAR_POSITIONAL]
    unknown = [k for k in kwargs if k not in accepted]
    if unknown:
        name = getattr(target, "__qualname__", repr(target))
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(map(repr, unknown))} for {name}; accepted keys: {', '.join(accepted)}"
        )


def without_pretrained(cfg: Any) -> Any:
    """The config tree with every ``pretrained`` set to None: a model to time, or to convert a whole checkpoint for,
    needs no weight files."""
    if isinstance(cfg, dict):
        return {k: None if k == "pretrained" else without_pretrained(v) for k, v in cfg.items()}
    if isinstance(cfg, list | tuple):
        return type(cfg)(without_pretrained(v) for v in cfg)
    return cfg


def to_plain(cfg: Any) -> Any:
    """ConfigDict/list tree -> plain dicts and lists (for code that must not see mmengine types)."""
    if isinstance(cfg, ConfigDict | dict):
        return {k: to_plain(v) for k, v in cfg.items()}
    if isinstance(cfg, list | tuple):
        return type(cfg)(to_plain(v) for v in cfg)
    return cfg


def to_dotted(cfg: Any) -> Any:
    """Classes and functions -> dotted import paths (what ``resolve_type`` reads), so that a config built in
    Python can be printed and dumped as a config file."""
    if isinstance(cfg, type) or inspect.isroutine(cfg):
        return f"{cfg.__module__}.{cfg.__qualname__}"
    if isinstance(cfg, ConfigDict | dict):
        return {k: to_dotted(v) for k, v in cfg.items()}
    if isinstance(cfg, list | tuple):
        return type(cfg)(to_dotted(v) for v in cfg)
    return cfg

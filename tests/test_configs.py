"""Every config in configs/ loads and builds; config mistakes fail with a ConfigError that names them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import densevit.config
from densevit.checkpoint import get_converter
from densevit.config import ConfigError, build, load_config, resolve_type, to_plain

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
CONFIG_FILES = sorted(str(p.relative_to(CONFIGS)) for p in CONFIGS.rglob("*.py"))
QUICKSTART = CONFIGS / "quickstart" / "mask_rcnn_vit_tiny_demo.py"
DATA_KEYS = ("train_dataloader", "val_dataloader", "test_dataloader", "val_evaluator", "test_evaluator")

pytestmark = pytest.mark.usefixtures("one_thread")


def pretrained_files(cfg: Any) -> list[Any]:
    """The ``pretrained`` entries (not None) of every component inside a config tree."""
    if isinstance(cfg, dict):
        own = [cfg["pretrained"]] if "type" in cfg and cfg.get("pretrained") is not None else []
        return own + [f for v in cfg.values() for f in pretrained_files(v)]
    if isinstance(cfg, list | tuple):
        return [f for v in cfg for f in pretrained_files(v)]
    return []


def component_types(cfg: Any, where: str) -> list[tuple[str, Any]]:
    """(key, type) of every component inside a config tree."""
    found = []
    if isinstance(cfg, dict):
        if "type" in cfg:
            found.append((f"{where}.type", cfg["type"]))
        for k, v in cfg.items():
            found += component_types(v, f"{where}.{k}")
    elif isinstance(cfg, list | tuple):
        for i, v in enumerate(cfg):
            found += component_types(v, f"{where}[{i}]")
    return found


def test_every_config_is_tested():
    assert len(CONFIG_FILES) >= 30 and "quickstart/mask_rcnn_vit_tiny_demo.py" in CONFIG_FILES


@pytest.mark.parametrize("name", CONFIG_FILES)
def test_config_loads_and_builds(name, monkeypatch):
    cfg = load_config(CONFIGS / name)
    model_cfg = to_plain(cfg.model)
    # The checkpoints are not in the repository: record what each ``pretrained`` would load, and into what.
    loads = []
    monkeypatch.setattr(densevit.config, "load_weights", lambda module, path, **kw: loads.append((module, kw)))
    if name.startswith("quickstart/"):
        model = build(model_cfg, "model")  # small: built for real
    else:
        with torch.device("meta"):  # full size (up to ViT-H) without allocating or initialising memory
            model = build(model_cfg, "model")
    assert isinstance(model, nn.Module) and sum(p.numel() for p in model.parameters()) > 0
    assert len(loads) == len(pretrained_files(model_cfg))
    for module, kw in loads:  # the layout its file is read in is one the module declares (or the config names)
        get_converter(kw.get("converter") or type(module).default_converter)
    for key in DATA_KEYS:
        if key in cfg:
            for where, type_ in component_types(to_plain(cfg[key]), key):
                assert callable(resolve_type(type_, where))
    assert cfg.train_cfg.max_iters > 0 and cfg.optimizer.lr > 0


def test_unknown_cfg_options_key_is_named():
    with pytest.raises(ConfigError, match=r"'no_such_key'.*it has \[.*'model'"):
        load_config(QUICKSTART, {"no_such_key.depth": 3})


def test_unknown_constructor_key_is_named():
    cfg = load_config(QUICKSTART, {"model.backbone.foo": 1})
    with pytest.raises(ConfigError, match=r"model\.backbone: unknown key\(s\) 'foo' for SimpleFeaturePyramid; "
                                          r"accepted keys: backbone, out_channels"):
        build(to_plain(cfg.model), "model")


def test_unknown_component_name_lists_the_known_names():
    cfg = load_config(QUICKSTART, {"model.backbone.backbone.type": "NoSuchViT"})
    with pytest.raises(ConfigError, match=r"model\.backbone\.backbone\.type: unknown component 'NoSuchViT'; "
                                          r"known components: .*\bMaskRCNN\b.*\bViT\b"):
        build(to_plain(cfg.model), "model")
    with pytest.raises(ConfigError, match=r"cannot import 'densevit\.backbones\.vit\.NoSuchViT'"):
        resolve_type("densevit.backbones.vit.NoSuchViT", "model.backbone.type")


def test_missing_config_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"config file {tmp_path / 'nope.py'} does not exist"):
        load_config(tmp_path / "nope.py")

"""Every config in configs/ loads and builds with the numbers it had; a variant changes only the fields it sets;
config mistakes fail with a ConfigError that names them."""

from __future__ import annotations

import ast
import functools
import os
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import densevit.config
from densevit.checkpoint import get_converter
from densevit.config import ConfigError, build, load_config, resolve_type, to_plain

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
# configs/_base_/ holds the pieces (data, schedules, runtime) that the runnable configs import
CONFIG_FILES = sorted(str(p.relative_to(CONFIGS)) for p in CONFIGS.rglob("*.py")
                      if "_base_" not in p.relative_to(CONFIGS).parts)
BASE_FILES = sorted(str(p.relative_to(CONFIGS)) for p in (CONFIGS / "_base_").rglob("*.py"))
QUICKSTART = CONFIGS / "quickstart" / "mask_rcnn_vit_tiny_demo.py"
DATA_KEYS = ("train_dataloader", "val_dataloader", "test_dataloader", "val_evaluator", "test_evaluator")

# (parameters of the built model, max_iters, lr, per-GPU train batch) of every config as it was before the configs
# were rebuilt on shared bases and size tables: what a user runs stays the same
KEY_NUMBERS = {
    "depth/dpt_vit_b_nyu.py": (97310785, 36400, 1e-4, 2),
    "depth/dpt_vit_b_sfp_nyu.py": (96529121, 36400, 1e-4, 2),
    "depth/dpt_vit_comer_b_nyu.py": (116495265, 36400, 1e-4, 2),
    "quickstart/dpt_vit_tiny_demo.py": (1921169, 3200, 1e-3, 8),
    "quickstart/mask_rcnn_stvit_r_tiny_demo.py": (6059987, 1350, 4e-4, 8),
    "quickstart/mask_rcnn_vit_comer_tiny_demo.py": (7905619, 240, 4e-4, 8),
    "quickstart/mask_rcnn_vit_tiny_demo.py": (6281075, 1000, 4e-4, 8),
    "quickstart/upernet_vit_tiny_demo.py": (1892108, 3200, 2e-3, 8),
    "quickstart/topdown_pose_hybrid_vit_tiny_demo.py": (1277585, 2000, 2e-3, 32),
    "stvit_r/cascade_mask_rcnn_stvit_r_swin_b_3x.py": (139354215, 263880, 1e-4, 2),
    "stvit_r/cascade_mask_rcnn_stvit_r_swin_s_3x.py": (101300069, 263880, 1e-4, 2),
    "stvit_r/mask_rcnn_stvit_r_swin_b_3x.py": (109093117, 263880, 1e-4, 2),
    "stvit_r/mask_rcnn_stvit_r_swin_s_3x.py": (71038971, 263880, 1e-4, 2),
    "stvit_r/mask_rcnn_stvit_r_vit_b_100ep.py": (110900149, 184375, 1e-4, 8),
    "stvit_r/mask_rcnn_stvit_r_vit_s_100ep.py": (44506453, 184375, 1e-4, 8),
    "stvit_r/upernet_stvit_r_swin_b_ade20k_160k.py": (121323828, 160000, 6e-5, 2),
    "stvit_r/upernet_stvit_r_swin_s_ade20k_160k.py": (81279026, 160000, 6e-5, 2),
    "stvit_r/upernet_stvit_r_vit_b_sfp_ade20k_160k.py": (120183788, 160000, 1e-4, 2),
    "stvit_r/upernet_stvit_r_vit_s_sfp_ade20k_160k.py": (53790092, 160000, 6e-5, 2),
    "upernet/upernet_vit_b_sfp_ade20k_160k.py": (120183788, 160000, 1e-4, 2),
    "vit_comer/mask_rcnn_vit_comer_b_deit_1x.py": (128846709, 87960, 1e-4, 2),
    "vit_comer/mask_rcnn_vit_comer_b_deit_3x.py": (128846709, 263880, 1e-4, 2),
    "vit_comer/mask_rcnn_vit_comer_b_dinov2_1x.py": (129747573, 87960, 1e-4, 2),
    "vit_comer/mask_rcnn_vit_comer_b_dinov2_3x.py": (129747573, 263880, 1e-4, 2),
    "vit_comer/mask_rcnn_vit_comer_l_dinov2_1x.py": (364052533, 87960, 1e-4, 2),
    "vit_comer/mask_rcnn_vit_comer_l_dinov2_3x.py": (364052533, 263880, 1e-4, 2),
    "vit_comer/mask_rcnn_vit_comer_l_in22k_1x.py": (362851381, 87960, 1e-4, 2),
    "vit_comer/mask_rcnn_vit_comer_l_in22k_3x.py": (362851381, 263880, 1e-4, 2),
    "vit_comer/mask_rcnn_vit_comer_s_deit_1x.py": (50309973, 87960, 1e-4, 2),
    "vit_comer/mask_rcnn_vit_comer_s_deit_3x.py": (50309973, 263880, 1e-4, 2),
    "vit_comer/mask_rcnn_vit_comer_s_dinov2_1x.py": (50760405, 87960, 1e-4, 2),
    "vit_comer/mask_rcnn_vit_comer_s_dinov2_3x.py": (50760405, 263880, 1e-4, 2),
    "vit_comer/mask_rcnn_vit_comer_t_deit_1x.py": (28845909, 87960, 1e-4, 2),
    "vit_comer/mask_rcnn_vit_comer_t_deit_3x.py": (28845909, 263880, 1e-4, 2),
    "vit_comer/upernet_vit_comer_b_ade20k_160k.py": (144745132, 160000, 6e-5, 2),
    "vit_comer/upernet_vit_comer_s_ade20k_160k.py": (61391500, 160000, 6e-5, 2),
    "vit_comer/upernet_vit_comer_t_ade20k_160k.py": (38715148, 160000, 12e-5, 2),
    "vitdet/mask_rcnn_vit_b_100ep.py": (110900149, 184375, 1e-4, 8),
    "vitdet/mask_rcnn_vit_h_100ep.py": (661208117, 184375, 1e-4, 8),
    "vitdet/mask_rcnn_vit_l_100ep.py": (330689013, 184375, 1e-4, 8),
    "vitpose/vitpose_b_classic_coco_256x192.py": (89994513, 61530, 5e-4, 64),
    "vitpose/vitpose_b_sfp_coco_256x192.py": (92212689, 61530, 5e-4, 64),
    "vitpose/vitpose_b_simple_coco_256x192.py": (85912337, 61530, 5e-4, 64),
    "vitpose/vitpose_h_classic_coco_256x192.py": (637208849, 61530, 5e-4, 64),
    "vitpose/vitpose_h_simple_coco_256x192.py": (631107857, 61530, 5e-4, 64),
    "vitpose/vitpose_l_classic_coco_256x192.py": (308544785, 61530, 5e-4, 64),
    "vitpose/vitpose_l_simple_coco_256x192.py": (303453201, 61530, 5e-4, 64),
    "vitpose/vitpose_s_classic_coco_256x192.py": (24290577, 61530, 5e-4, 64),
    "vitpose/vitpose_s_simple_coco_256x192.py": (21722513, 61530, 5e-4, 64),
    "vitpose/vitpose_vit_comer_b_coco_256x192.py": (111964305, 61530, 5e-4, 64),
}

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
    assert set(KEY_NUMBERS) <= set(CONFIG_FILES) and "quickstart/mask_rcnn_vit_tiny_demo.py" in CONFIG_FILES


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
    params = sum(p.numel() for p in model.parameters())
    assert isinstance(model, nn.Module) and params > 0
    if name in KEY_NUMBERS:
        found = (params, cfg.train_cfg.max_iters, cfg.optimizer.lr, cfg.train_dataloader.batch_size)
        assert found == pytest.approx(KEY_NUMBERS[name], rel=1e-12), f"{name}: (params, max_iters, lr, batch)"
    assert len(loads) == len(pretrained_files(model_cfg))
    for module, kw in loads:  # the layout its file is read in is one the module declares (or the config names)
        get_converter(kw.get("converter") or type(module).default_converter)
    for key in DATA_KEYS:
        if key in cfg:
            for where, type_ in component_types(to_plain(cfg[key]), key):
                assert callable(resolve_type(type_, where))
    assert cfg.train_cfg.max_iters > 0 and cfg.optimizer.lr > 0


def key_path(node: ast.expr) -> str | None:
    """The config key an assignment target or an ``update`` receiver names, e.g. ``param_scheduler[1]``."""
    if isinstance(node, ast.Name):
        return node.id
    inner = key_path(node.value) if isinstance(node, ast.Attribute | ast.Subscript) else None
    if inner is None:
        return None
    if isinstance(node, ast.Attribute):
        return f"{inner}.{node.attr}"
    if isinstance(node.slice, ast.Constant):
        key = node.slice.value
        return f"{inner}.{key}" if isinstance(key, str) else f"{inner}[{key}]"
    return None


def read_variant(name: str) -> tuple[str | None, set[str]]:
    """The config that ``name`` imports with ``*`` outside configs/_base_/ (None if it has none), and the keys it sets.

    Keys it sets: what its statements assign, update or delete, the names it imports one by one from other configs,
    and every key of a configs/_base_/ file it imports with ``*`` (e.g. a schedule replacing its base's).
    """
    base, touched = None, set()
    for node in ast.parse((CONFIGS / name).read_text()).body:
        if isinstance(node, ast.With):  # with read_base(): the configs it builds on
            for imp in node.body:
                parts = [os.path.dirname(name), *[".."] * (imp.level - 1), *imp.module.split(".")]
                other = os.path.normpath(os.path.join(*parts)) + ".py"
                if imp.names[0].name != "*":
                    touched |= {alias.asname or alias.name for alias in imp.names}
                elif "_base_" in other:
                    touched |= set(resolved(other))
                else:
                    assert base is None, f"{name} imports two configs with *"
                    base = other
        elif isinstance(node, ast.Assign):
            targets = [e for t in node.targets for e in (t.elts if isinstance(t, ast.Tuple) else [t])]
            touched |= {key_path(t) for t in targets}
        elif isinstance(node, ast.Delete):
            touched |= {key_path(t) for t in node.targets}
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            func = node.value.func
            if isinstance(func, ast.Attribute) and func.attr == "update":
                touched.add(key_path(func.value))
    return base, touched - {None}


@functools.cache
def resolved(name: str) -> dict:
    """A config's keys as a user's run sees them (mmengine leaves out the names it imports: classes, functions)."""
    return load_config(CONFIGS / name).to_dict()


def differences(a: Any, b: Any, where: str) -> list[str]:
    """The key paths where two config trees differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        paths = {k: f"{where}.{k}".lstrip(".") for k in {*a, *b}}
        return [d for k, path in paths.items()
                for d in (differences(a[k], b[k], path) if k in a and k in b else [path])]
    if isinstance(a, list | tuple) and isinstance(b, list | tuple) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in differences(x, y, f"{where}[{i}]")]
    return [] if type(a) is type(b) and a == b else [where]


VARIANTS = [name for name in CONFIG_FILES if read_variant(name)[0] is not None]


def test_variants_are_found():
    assert "vitdet/mask_rcnn_vit_l_100ep.py" in VARIANTS and "vitdet/mask_rcnn_vit_b_100ep.py" not in VARIANTS


@pytest.mark.parametrize("name", VARIANTS)
def test_variant_changes_only_the_fields_it_sets(name):
    base, touched = read_variant(name)
    changed = differences(resolved(base), resolved(name), "")
    assert changed, f"{name} resolves to the same config as {base}"
    untold = [d for d in changed if not any(d == t or d.startswith((f"{t}.", f"{t}[")) for t in touched)]
    assert not untold, f"{name} differs from {base} in keys it does not set: {untold}"


@pytest.mark.parametrize("name", BASE_FILES)
def test_base_loads_and_is_imported(name):
    assert resolved(name) and "model" not in resolved(name)  # the pieces; the model is the method config's
    module = name.removesuffix(".py").replace("/", ".")
    assert any(module in (CONFIGS / other).read_text() for other in CONFIG_FILES + BASE_FILES), f"unused {name}"


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

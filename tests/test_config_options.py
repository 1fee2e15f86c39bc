"""Config overrides take effect everywhere their value is used, or fail naming why; config mistakes surface early."""

from __future__ import annotations

from pathlib import Path

import pytest
from mmengine.config import Config

from densevit.config import ConfigError, load_config
from densevit.engine.runner import build_runner

ROOT = Path(__file__).resolve().parents[1]
SEG = ROOT / "configs" / "quickstart" / "upernet_vit_tiny_demo.py"


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ({"data_root": "/elsewhere"}, r"'data_root' is a helper variable .* 'data/demo' was written into "
                                      r"train_dataloader\.dataset\.img_dir"),
        ({"max_iters": 30}, r"'max_iters' is a helper variable .* 3200 was written into .*train_cfg\.max_iters"),
        ({"classes": ["a"]}, r"'classes' is a helper variable .* val_evaluator\.class_names"),
        ({"nothing_like_it": 1}, r"has no top-level key 'nothing_like_it'"),
    ],
)
def test_an_override_that_cannot_take_effect_fails_naming_why(option, message):
    with pytest.raises(ConfigError, match=message):
        load_config(SEG, option)


def test_max_iters_override_scales_the_whole_schedule():
    cfg = load_config(SEG, {"train_cfg.max_iters": 32})
    assert cfg.train_cfg.max_iters == 32 and cfg.train_cfg.val_interval == 32
    warmup, poly = cfg.param_scheduler
    assert (warmup.begin, warmup.end, poly.begin, poly.end) == (0, 1, 1, 32)  # 100 of 3,200 -> 1 of 32
    assert cfg.default_hooks.checkpoint.interval == 16 and cfg.default_hooks.logger.interval == 25
    vitdet = load_config(ROOT / "configs" / "vitdet" / "mask_rcnn_vit_b_100ep.py", {"train_cfg.max_iters": 1844})
    assert [s.get("milestones") for s in vitdet.param_scheduler] == [None, [1639, 1776]]  # 163,889 / 177,546 of 184,375
    # keys given beside it keep their given values
    given = load_config(SEG, {"train_cfg.max_iters": 32, "train_cfg.val_interval": 8})
    assert given.train_cfg.val_interval == 8
    # the keys densevit reads are overridden as given
    assert load_config(SEG, {"train_dataloader.batch_size": 3}).train_dataloader.batch_size == 3


def test_a_syntax_error_names_the_config_file_and_line(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("model = dict(\n    type='x',\n    depth=2\n    width=3)\n")
    with pytest.raises(ConfigError, match=r"bad\.py, line 3"):
        load_config(bad)


def test_a_wrong_class_count_fails_before_the_first_step(tiny_config, tmp_path):
    cfg = tiny_config()
    cfg["model"]["num_classes"] = 7
    with pytest.raises(ValueError, match=r"instances_train\.json has 5 classes .* but the model predicts 7"):
        build_runner(Config(cfg), work_dir=tmp_path)


def test_an_empty_training_set_is_an_error_naming_the_annotation_file(tiny_config, tmp_path):
    import json

    source = json.loads(Path(tiny_config()["train_dataloader"]["dataset"]["ann_file"]).read_text())
    for ann in source["annotations"]:
        ann["bbox"] = [0, 0, 0, 0]  # every box degenerate: nothing left to train on
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps(source))
    cfg = tiny_config()
    cfg["train_dataloader"]["dataset"]["ann_file"] = str(empty)
    with pytest.raises(ValueError, match=r"empty\.json gives no training sample"):
        build_runner(Config(cfg), work_dir=tmp_path / "run")

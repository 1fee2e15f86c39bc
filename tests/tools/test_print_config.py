"""tools/print_config.py: a quickstart config with its bases merged and overrides applied, printed and dumped."""

from __future__ import annotations

from pathlib import Path

import pytest

from densevit.config import load_config

ROOT = Path(__file__).resolve().parents[2]


def test_prints_the_resolved_config_with_overrides(tool, tmp_path, capsys):
    out = tmp_path / "resolved.py"
    tool("print_config.py", ROOT / "configs/quickstart/mask_rcnn_stvit_r_tiny_demo.py",
         "--cfg-options", "optimizer.lr=0.001", "train_dataloader.batch_size=2", "--out", out)
    text = capsys.readouterr().out
    assert "type='densevit.adapters.stvit_r.STViTR'" in text  # from the variant
    assert "type='densevit.models.mask_rcnn.MaskRCNN'" in text  # from its base
    assert "max_iters = 1350" in text
    resolved = load_config(out)  # the dump is a config that loads again, overrides included
    assert resolved.optimizer.lr == 0.001 and resolved.train_dataloader.batch_size == 2
    assert resolved.model.backbone.backbone.type == "densevit.adapters.stvit_r.STViTR"


def test_an_unknown_override_key_is_named(tool):
    with pytest.raises(ValueError, match="no top-level key 'optimiser'"):
        tool("print_config.py", ROOT / "configs/quickstart/upernet_vit_tiny_demo.py", "--cfg-options", "optimiser.lr=1")

"""Safe checkpoint reading, the timm / DINOv2 / detectron2 converters and the conversion CLI."""

from __future__ import annotations

import os
import pickle
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from densevit.adapters.simple_pyramid import SimpleFeaturePyramid
from densevit.backbones.vit import ViT
from densevit.checkpoint import (
    convert_detectron2_vitdet,
    convert_dinov2,
    convert_timm_vit,
    load_pretrained,
    load_state_dict_file,
)

TOOL = Path(__file__).resolve().parents[1] / "tools" / "convert_checkpoint.py"


def tiny_vit(**kwargs) -> ViT:
    return ViT(**{"embed_dim": 64, "depth": 2, "num_heads": 2, "img_size": 64, **kwargs})


def test_reads_torch_safetensors_and_containers(tmp_path):
    state = {"a": torch.randn(2, 3), "b": torch.arange(4)}
    torch.save(state, tmp_path / "plain.pth")
    torch.save({"model": state, "epoch": 3}, tmp_path / "mae.pth")
    torch.save({"meta": {"x": 1}, "state_dict": state}, tmp_path / "mmengine.ckpt")
    from safetensors.torch import save_file

    save_file(state, tmp_path / "w.safetensors")
    for name in ("plain.pth", "mae.pth", "mmengine.ckpt", "w.safetensors"):
        loaded = load_state_dict_file(tmp_path / name)
        assert loaded.keys() == state.keys(), name
        for key, value in state.items():
            torch.testing.assert_close(loaded[key], value, rtol=0, atol=0)


def test_bad_files_raise_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.pth"):
        load_state_dict_file(tmp_path / "nope.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"junk\.pth"):
        load_state_dict_file(tmp_path / "junk.pth")
    (tmp_path / "w.onnx").write_bytes(b"x")
    with pytest.raises(ValueError, match="unknown checkpoint suffix"):
        load_state_dict_file(tmp_path / "w.onnx")
    torch.save({"model": {"a": torch.ones(1), "note": "text"}}, tmp_path / "mixed.pth")
    with pytest.raises(ValueError, match="'note'"):
        load_state_dict_file(tmp_path / "mixed.pth")


def test_weights_only_refuses_code_in_pth(tmp_path):
    marker = tmp_path / "ran"
    with (tmp_path / "evil.pth").open("wb") as f:
        pickle.dump(_Evil(str(marker)), f, protocol=2)
    with pytest.raises(ValueError, match=r"(?s)evil\.pth.*GLOBAL (posix|os|nt)\.system"):
        load_state_dict_file(tmp_path / "evil.pth")
    assert not marker.exists()


class _Evil:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def detectron2_state(sfp: SimpleFeaturePyramid) -> dict[str, np.ndarray]:
    """The layout of a detectron2 ViTDet model file: backbone.net.*, backbone.simfp_*, heads."""
    state = {}
    for key, value in sfp.state_dict().items():
        prefix = "backbone.net." if key.startswith("backbone.") else "backbone."
        state[prefix + key.removeprefix("backbone.")] = value.numpy() + 1.0
    state["roi_heads.box_predictor.cls_score.weight"] = np.ones((81, 1024), np.float32)
    return state


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_detectron2_pickle_loads_and_converts(tmp_path, protocol):
    sfp = SimpleFeaturePyramid(tiny_vit(window_size=2, window_block_indexes=(0,), use_rel_pos=True), 32)
    state = detectron2_state(sfp)
    path = tmp_path / "model_final.pkl"
    with path.open("wb") as f:
        pickle.dump({"model": state, "__author__": "Detectron2 Model Zoo", "matching_heuristics": True}, f,
                    protocol=protocol)
    missing, unexpected = load_pretrained(sfp, path, convert=convert_detectron2_vitdet)
    assert missing == [] and unexpected == ["roi_heads.box_predictor.cls_score.weight"]
    own = sfp.state_dict()
    torch.testing.assert_close(own["backbone.blocks.0.attn.rel_pos_h"],
                               torch.from_numpy(state["backbone.net.blocks.0.attn.rel_pos_h"]))
    torch.testing.assert_close(own["simfp_2.4.norm.weight"], torch.from_numpy(state["backbone.simfp_2.4.norm.weight"]))


def test_restricted_unpickler_refuses_other_globals(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pkl"
    with path.open("wb") as f:
        pickle.dump({"model": {"w": np.zeros(2), "x": _Evil(str(marker))}}, f)
    with pytest.raises(ValueError, match=r"evil\.pkl.*refused to load global '(posix|os|nt)\.system'"):
        load_state_dict_file(path)
    assert not marker.exists()


def test_timm_converter_drops_classification_keys_and_normalises_pos_embed():
    base = {"patch_embed.proj.weight": torch.randn(8, 3, 16, 16), "blocks.0.ls1.gamma": torch.ones(8),
            "cls_token": torch.zeros(1, 1, 8), "norm.weight": torch.ones(8), "head.weight": torch.ones(10, 8),
            "fc_norm.bias": torch.ones(8), "decoder_embed.weight": torch.ones(4, 8), "mask_token": torch.ones(1, 1, 8)}
    grid = torch.randn(1, 9, 8)
    cls, dist = torch.randn(1, 1, 8), torch.randn(1, 1, 8)
    out = convert_timm_vit({**base, "pos_embed": torch.cat([cls, grid], 1)})
    assert set(out) == {"patch_embed.proj.weight", "blocks.0.ls1.gamma", "pos_embed"}
    torch.testing.assert_close(out["pos_embed"], torch.cat([cls, grid], 1))
    # no_embed_class models (no class slot): an unused zero slot is added.
    out = convert_timm_vit({**base, "pos_embed": grid})
    torch.testing.assert_close(out["pos_embed"], torch.cat([torch.zeros(1, 1, 8), grid], 1))
    # distilled DeiT (class + distillation slots): the distillation slot goes.
    out = convert_timm_vit({**base, "pos_embed": torch.cat([cls, dist, grid], 1), "dist_token": dist})
    torch.testing.assert_close(out["pos_embed"], torch.cat([cls, grid], 1))


def fake_dinov2(vit: ViT) -> dict[str, torch.Tensor]:
    """DINOv2 layout: patch-14 kernel, ls1/ls2 gamma, class token, mask token, final norm."""
    state = {k: v.clone() for k, v in vit.state_dict().items()}
    ramp = torch.arange(14.0).expand(14, 14)  # kernel value = column index, to check the resize
    state["patch_embed.proj.weight"] = ramp.expand(64, 3, 14, 14).clone()
    state.update(cls_token=torch.zeros(1, 1, 64), mask_token=torch.zeros(1, 64), **{"norm.weight": torch.ones(64)})
    return state


def test_dinov2_converts_and_loads(tmp_path):
    vit = tiny_vit(layer_scale_init=1.0, pretrain_img_size=592)  # 37 x 37 position grid
    assert vit.pos_embed.shape == (1, 1 + 37 * 37, 64)
    state = fake_dinov2(vit)
    out = convert_dinov2(state)
    assert "mask_token" not in out and "cls_token" not in out and "norm.weight" not in out
    assert "blocks.1.ls2.gamma" in out
    kernel = out["patch_embed.proj.weight"]
    assert kernel.shape == (64, 3, 16, 16)
    # Bilinear, align_corners=False: column j samples source x = (j + 0.5) * 14 / 16 - 0.5, clamped.
    expected = ((torch.arange(16.0) + 0.5) * 14 / 16 - 0.5).clamp(0, 13)
    torch.testing.assert_close(kernel[5, 1, 7], expected)
    torch.save(state, tmp_path / "dinov2_vits14_pretrain.pth")
    fresh = tiny_vit(layer_scale_init=1e-5, pretrain_img_size=592, pretrained=tmp_path / "dinov2_vits14_pretrain.pth")
    torch.testing.assert_close(fresh.patch_embed.proj.weight, kernel)
    torch.testing.assert_close(fresh.blocks[0].ls1.gamma, state["blocks.0.ls1.gamma"])
    with pytest.raises(ValueError, match="register"):
        convert_dinov2({**state, "register_tokens": torch.zeros(1, 4, 64)})


def test_load_pretrained_reports_shape_mismatch_and_foreign_files(tmp_path):
    torch.save(tiny_vit().state_dict(), tmp_path / "vit224.pth")
    with pytest.raises(ValueError, match=r"vit224\.pth.*pos_embed: file \(1, 17, 64\) vs model \(1, 50, 64\)"):
        tiny_vit(img_size=112, pretrained=tmp_path / "vit224.pth")
    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "resnet.pth")
    with pytest.raises(ValueError, match="none of its 1 keys"):
        tiny_vit(pretrained=tmp_path / "resnet.pth")


def test_convert_cli_writes_atomically(tmp_path, monkeypatch):
    sfp = SimpleFeaturePyramid(tiny_vit(), 32)
    src, dst = tmp_path / "model_final.pkl", tmp_path / "out" / "vitdet.pth"
    with src.open("wb") as f:
        pickle.dump({"model": detectron2_state(sfp)}, f)
    monkeypatch.setattr(sys, "argv", ["convert_checkpoint.py", str(src), str(dst), "--format", "detectron2"])
    runpy.run_path(str(TOOL), run_name="__main__")
    assert sorted(p.name for p in dst.parent.iterdir()) == ["vitdet.pth"]
    saved = torch.load(dst, weights_only=True)["state_dict"]
    fresh = SimpleFeaturePyramid(tiny_vit(), 32)
    fresh.load_state_dict({k: v for k, v in saved.items() if not k.startswith("roi_heads.")})
    torch.testing.assert_close(fresh.backbone.pos_embed, sfp.backbone.pos_embed + 1.0)

"""Safe checkpoint reading, the converters and their registry, load_weights and its report, config ``pretrained``,
and the conversion CLI."""

from __future__ import annotations

import os
import pickle
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import write_config
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from densevit.adapters.simple_pyramid import SimpleFeaturePyramid
from densevit.backbones.hybrid_vit import HybridViT
from densevit.backbones.vit import ViT
from densevit.checkpoint import (
    CONVERTERS,
    convert_dinov2,
    convert_timm_vit,
    load_state_dict_file,
    load_weights,
)
from densevit.config import ConfigError, build
from densevit.heads.rcnn import box_head, box_predictor, mask_head, mask_predictor, rpn_head
from densevit.models.mask_rcnn import MaskRCNN

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
    report = load_weights(sfp, path, "detectron2", strict=False)  # the detector's heads are not the pyramid's
    missing, unexpected = report.missing, report.unexpected
    assert missing == [] and unexpected == ["roi_heads.box_predictor.cls_score.weight"]
    own = sfp.state_dict()
    torch.testing.assert_close(own["backbone.blocks.0.attn.rel_pos_h"],
                               torch.from_numpy(state["backbone.net.blocks.0.attn.rel_pos_h"]))
    torch.testing.assert_close(own["simfp_2.4.norm.weight"], torch.from_numpy(state["backbone.simfp_2.4.norm.weight"]))


def detectron2_detector_state(model: nn.Module, cascade: bool) -> dict[str, np.ndarray]:
    """``model``'s weights (random) under detectron2's names: StandardRPNHead with two convs, FastRCNNConvFCHead
    (conv1.., conv1.norm, fc1), FastRCNNOutputLayers (background last, no background deltas),
    MaskRCNNConvUpsampleHead (mask_fcn1.., deconv, predictor without background); Cascade's heads per stage."""
    rng = np.random.default_rng(0)
    renames = {"rpn.head.conv.0.0": "proposal_generator.rpn_head.conv.conv0",
               "rpn.head.conv.1.0": "proposal_generator.rpn_head.conv.conv1",
               "rpn.head.cls_logits": "proposal_generator.rpn_head.objectness_logits",
               "rpn.head.bbox_pred": "proposal_generator.rpn_head.anchor_deltas",
               "box_head.0.0": "box_head{}.conv1", "box_head.0.1": "box_head{}.conv1.norm",
               "box_head.1.0": "box_head{}.conv2", "box_head.1.1": "box_head{}.conv2.norm",
               "box_head.3": "box_head{}.fc1",  # after the two convs and the flatten
               "box_predictor.cls_score": "box_predictor{}.cls_score",
               "box_predictor.bbox_pred": "box_predictor{}.bbox_pred",
               "mask_head.0.0": "mask_head.mask_fcn1", "mask_head.0.1": "mask_head.mask_fcn1.norm",
               "mask_head.1.0": "mask_head.mask_fcn2", "mask_head.1.1": "mask_head.mask_fcn2.norm",
               "mask_predictor.conv5_mask": "mask_head.deconv", "mask_predictor.mask_fcn_logits": "mask_head.predictor"}
    state = {}
    for key, value in model.state_dict().items():
        if key.startswith("backbone.backbone."):  # the ViT inside the pyramid
            state["backbone.net." + key.removeprefix("backbone.backbone.")] = rng.normal(size=value.shape)
            continue
        if key.startswith("backbone."):  # the pyramid's own layers
            state[key] = rng.normal(size=value.shape)
            continue
        module, param = key.rsplit(".", 1)
        stage = ""
        if module.startswith("roi_heads.stages."):
            _, _, index, module = module.split(".", 3)
            stage = f".{index}"
        module = module.removeprefix("roi_heads.")
        name = renames[module].format(stage)
        name = f"{name if name.startswith('proposal_generator') else 'roi_heads.' + name}.{param}"
        rows = value.shape[0]  # detectron2 has no background set of box deltas (class-specific) or mask logits
        if module == "box_predictor.bbox_pred" and not cascade:
            rows -= 4
        elif module == "mask_predictor.mask_fcn_logits":
            rows -= 1
        state[name] = rng.normal(size=(rows, *value.shape[1:]))
    return {k: v.astype(np.float32) for k, v in state.items()}


def tiny_detector_config(cascade: bool, classes: int = 3) -> dict:
    """A Mask R-CNN (or Cascade) on the tiny ViT with detectron2's head layout at small widths: two RPN convs,
    2 conv + 1 fc box head, 2 conv mask head."""
    return dict(
        type=MaskRCNN, backbone=dict(type=SimpleFeaturePyramid, backbone=dict(type=ViT, img_size=64, embed_dim=64,
                                                                               depth=2, num_heads=2), out_channels=32),
        num_classes=classes, cascade=cascade,
        rpn_head_module=dict(type=rpn_head, in_channels=32, num_anchors=3, num_convs=2),
        box_head_module=dict(type=box_head, in_channels=32, conv_dim=16, num_convs=2, fc_dim=24),
        box_predictor_module=dict(type=box_predictor, in_channels=24, num_classes=classes, class_agnostic=cascade),
        mask_head_module=dict(type=mask_head, in_channels=32, conv_dim=16, num_convs=2),
        mask_predictor_module=dict(type=mask_predictor, in_channels=16, conv_dim=16, num_classes=classes))


@pytest.mark.parametrize("cascade", [False, True], ids=["mask_rcnn", "cascade"])
def test_a_whole_detectron2_detector_loads_into_mask_rcnn(tmp_path, cascade):
    """Every detectron2 tensor finds its place, classes keep their meaning: detectron2's background score is the
    last row, torchvision's the first; class-specific deltas and mask logits gain a zero background set."""
    model = build(tiny_detector_config(cascade))
    state = detectron2_detector_state(model, cascade)
    path = tmp_path / "model_final.pkl"
    with path.open("wb") as f:
        pickle.dump({"model": state, "__author__": "Detectron2 Model Zoo"}, f)
    report = load_weights(model, path, "detectron2")  # strict: every key on both sides
    assert report.missing == [] and report.unexpected == []
    own = {k: v.numpy() for k, v in model.state_dict().items()}
    stage, at = (".stages.2", ".2") if cascade else ("", "")
    scores = state[f"roi_heads.box_predictor{at}.cls_score.weight"]
    np.testing.assert_array_equal(own[f"roi_heads{stage}.box_predictor.cls_score.weight"],
                                  np.concatenate([scores[-1:], scores[:-1]]))
    deltas = own[f"roi_heads{stage}.box_predictor.bbox_pred.bias"]
    if cascade:  # class-agnostic: as it is
        np.testing.assert_array_equal(deltas, state["roi_heads.box_predictor.2.bbox_pred.bias"])
    else:
        expected = np.concatenate([np.zeros(4), state["roi_heads.box_predictor.bbox_pred.bias"]])
        np.testing.assert_array_equal(deltas, expected)
    fc = state[f"roi_heads.box_head{at}.fc1.weight"]
    np.testing.assert_array_equal(own[f"roi_heads{stage}.box_head.3.weight"], fc)
    np.testing.assert_array_equal(own["roi_heads.mask_predictor.mask_fcn_logits.weight"][1:],
                                  state["roi_heads.mask_head.predictor.weight"])
    assert not own["roi_heads.mask_predictor.mask_fcn_logits.weight"][0].any()
    rpn_conv = state["proposal_generator.rpn_head.conv.conv1.weight"]
    np.testing.assert_array_equal(own["rpn.head.conv.1.0.weight"], rpn_conv)
    np.testing.assert_array_equal(own["backbone.simfp_2.0.weight"], state["backbone.simfp_2.0.weight"])


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
    fresh = tiny_vit(layer_scale_init=1e-5, pretrain_img_size=592)
    load_weights(fresh, tmp_path / "dinov2_vits14_pretrain.pth", "dinov2")
    torch.testing.assert_close(fresh.patch_embed.proj.weight, kernel)
    torch.testing.assert_close(fresh.blocks[0].ls1.gamma, state["blocks.0.ls1.gamma"])
    with pytest.raises(ValueError, match="register"):
        convert_dinov2({**state, "register_tokens": torch.zeros(1, 4, 64)})


def test_load_weights_reports_shape_mismatch_and_foreign_files(tmp_path):
    torch.save(tiny_vit().state_dict(), tmp_path / "vit224.pth")
    with pytest.raises(ValueError, match=r"vit224\.pth.*pos_embed: file \(1, 17, 64\) vs model \(1, 50, 64\)"):
        load_weights(tiny_vit(img_size=112), tmp_path / "vit224.pth")
    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "resnet.pth")
    with pytest.raises(ValueError, match="none of its 1 keys"):
        load_weights(tiny_vit(), tmp_path / "resnet.pth")


# --- load_weights: its report, strictness and new keys --------------------------------------------------------------


def timm_layout(**kwargs) -> dict[str, torch.Tensor]:
    """A timm ViT's state dict (cls_token, pos_embed with a class slot, blocks, final norm, head), 64 wide, 2 deep."""
    torch.manual_seed(0)
    options = dict(img_size=64, patch_size=16, embed_dim=64, depth=2, num_heads=2, num_classes=10)
    return VisionTransformer(**{**options, **kwargs}).state_dict()


def test_report_lists_loaded_new_missing_and_unexpected_keys(tmp_path):
    state = timm_layout()
    path = tmp_path / "mae.pth"
    torch.save({"model": state}, path)
    vit = tiny_vit(use_rel_pos=True)
    report = load_weights(vit, path, "mae")
    # the file has no relative positions at all: new in the dense model, left at init (zeros)
    assert report.new == [f"blocks.{i}.attn.rel_pos_{a}" for i in range(2) for a in "hw"]
    assert report.missing == [] and report.unexpected == [] and report.skipped == []
    assert len(report.loaded) == len(vit.state_dict()) - 4
    torch.testing.assert_close(vit.blocks[1].mlp.fc2.weight, state["blocks.1.mlp.fc2.weight"], rtol=0, atol=0)

    # one block's relative positions but not the other's is a gap, not a new kind of key; an extra key is unexpected
    gappy = {**state, "blocks.0.attn.rel_pos_h": torch.ones(7, 32), "blocks.0.attn.rel_pos_w": torch.ones(7, 32),
             "extra.weight": torch.ones(2)}
    del gappy["blocks.1.attn.proj.bias"]
    torch.save(gappy, path)
    with pytest.raises(ValueError, match=r"mae\.pth.*3 tensors of ViT are not in the checkpoint: "
                                         r"blocks\.1\.attn\.rel_pos_h, blocks\.1\.attn\.rel_pos_w, "
                                         r"blocks\.1\.attn\.proj\.bias.*1 checkpoint tensors are not in ViT: "
                                         r"extra\.weight"):
        load_weights(tiny_vit(use_rel_pos=True), path)
    vit = tiny_vit(use_rel_pos=True)
    before = vit.blocks[1].attn.proj.bias.detach().clone()
    report = load_weights(vit, path, strict=False)  # fine-tuning from another model: loads what matches
    assert report.missing == ["blocks.1.attn.rel_pos_h", "blocks.1.attn.rel_pos_w", "blocks.1.attn.proj.bias"]
    assert report.unexpected == ["extra.weight"] and report.new == []
    assert torch.equal(vit.blocks[1].attn.proj.bias, before)
    torch.testing.assert_close(vit.blocks[0].attn.rel_pos_h, torch.ones(7, 32))


def test_mis_shaped_key_is_an_error_naming_file_key_and_shapes(tmp_path):
    state = timm_layout()
    state["blocks.1.mlp.fc1.weight"] = torch.zeros(128, 32)
    torch.save(state, tmp_path / "timm.pth")
    vit = tiny_vit()
    before = vit.blocks[0].attn.qkv.weight.detach().clone()
    with pytest.raises(ValueError, match=r"timm\.pth: .*blocks\.1\.mlp\.fc1\.weight: file \(128, 32\) vs model "
                                         r"\(256, 64\)"):
        load_weights(vit, tmp_path / "timm.pth")
    assert torch.equal(vit.blocks[0].attn.qkv.weight, before)  # nothing loaded


def test_converter_by_name_function_or_default_and_unknown_names(tmp_path):
    own = {k: v + 1 for k, v in tiny_vit().state_dict().items()}
    torch.save({f"encoder.{k}": v for k, v in own.items()}, tmp_path / "custom.pth")
    vit = tiny_vit()
    load_weights(vit, tmp_path / "custom.pth", lambda state: {k.removeprefix("encoder."): v for k, v in state.items()})
    torch.testing.assert_close(vit.pos_embed, own["pos_embed"], rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"unknown checkpoint converter 'mea'; known converters: densevit, timm"):
        load_weights(vit, tmp_path / "custom.pth", "mea")


# --- every converter on a file in its official layout ---------------------------------------------------------------


def _timm_case(tmp_path: Path) -> tuple[ViT, Path, dict[str, torch.Tensor]]:
    state = timm_layout()
    torch.save(state, tmp_path / "vit_tiny_patch16_224.pth")
    return tiny_vit(), tmp_path / "vit_tiny_patch16_224.pth", state


def _mae_case(tmp_path: Path) -> tuple[ViT, Path, dict[str, torch.Tensor]]:
    state = timm_layout(num_classes=0)  # encoder, class token, final norm
    torch.save({"model": state}, tmp_path / "mae_pretrain_vit_base.pth")
    vitdet = tiny_vit(window_size=2, window_block_indexes=(0,), use_rel_pos=True)
    return vitdet, tmp_path / "mae_pretrain_vit_base.pth", state


def _dinov2_case(tmp_path: Path) -> tuple[ViT, Path, dict[str, torch.Tensor]]:
    state = timm_layout(img_size=518, patch_size=14, init_values=1.0, num_classes=0)  # 37 x 37 positions, ls gamma
    state["mask_token"] = torch.zeros(1, 64)
    torch.save(state, tmp_path / "dinov2_vits14_pretrain.pth")
    return tiny_vit(pretrain_img_size=592, layer_scale_init=1e-5), tmp_path / "dinov2_vits14_pretrain.pth", state


def _hybrid_vit_case(tmp_path: Path) -> tuple[ViT, Path, dict[str, torch.Tensor]]:
    _, path, state = _timm_case(tmp_path)
    return HybridViT(img_size=64, embed_dim=64, depth=2, num_heads=2, stem_widths=(8, 16, 32, 64)), path, state


def _densevit_case(tmp_path: Path) -> tuple[ViT, Path, dict[str, torch.Tensor]]:
    state = {k: v + 1 for k, v in tiny_vit(use_rel_pos=True).state_dict().items()}
    torch.save({"state_dict": state, "meta": {}}, tmp_path / "iter_100.pth")
    return tiny_vit(use_rel_pos=True), tmp_path / "iter_100.pth", state


OFFICIAL_LAYOUTS = {"timm": _timm_case, "mae": _mae_case, "dinov2": _dinov2_case, "hybrid_vit": _hybrid_vit_case,
                    "densevit": _densevit_case}
# converter -> the test that loads a file of its official layout through it
TESTED_ELSEWHERE = {
    "detectron2": "tests/test_checkpoint.py::test_detectron2_pickle_loads_and_converts",
    "vit_comer": "tests/adapters/test_vit_comer.py::test_official_checkpoints_load_strictly",
    "swin": "tests/backbones/test_swin.py::test_released_checkpoint_layout_loads_strictly",
    "timm_features": "tests/adapters/test_fpn.py::test_loads_local_classification_checkpoint",
    "vitpose": "tests/backbones/test_vitpose.py::test_official_file_loads_strictly_and_matches_the_reference",
    "mmpose_vitpose": "tests/backbones/test_vitpose.py::test_mmpose_file_loads_strictly_and_matches_the_reference",
    "vitpose_mae": "tests/backbones/test_vitpose.py::test_mae_file_initialises_the_backbone",
}


def test_every_converter_is_tested_on_its_official_layout():
    assert set(OFFICIAL_LAYOUTS) | set(TESTED_ELSEWHERE) == set(CONVERTERS)
    root = Path(__file__).resolve().parents[1]
    for name, test in TESTED_ELSEWHERE.items():
        file, function = test.split("::")
        source = (root / file).read_text()
        body = source[source.index(f"def {function}("):]
        assert "load_weights(" in body.split("\ndef ", 1)[0], (name, test)


@pytest.mark.parametrize("name", sorted(OFFICIAL_LAYOUTS))
def test_official_layout_loads_strictly(tmp_path, name):
    module, path, state = OFFICIAL_LAYOUTS[name](tmp_path)
    report = load_weights(module, path, name)  # strict: no missing, no unexpected key
    own = module.state_dict()
    for key in ("blocks.1.attn.qkv.weight", "blocks.0.mlp.fc2.bias", "pos_embed"):
        torch.testing.assert_close(own[key], state[key], rtol=0, atol=0)
    if name == "dinov2":
        assert own["patch_embed.proj.weight"].shape == (64, 3, 16, 16)
        torch.testing.assert_close(own["blocks.1.ls2.gamma"], state["blocks.1.ls2.gamma"], rtol=0, atol=0)
    if name == "hybrid_vit":  # the stem starts fresh: timm's patch projection is skipped, reported
        assert report.skipped == ["patch_embed.proj.weight", "patch_embed.proj.bias"]
        assert "patch_embed.stages.0.0.weight" in report.new and "patch_embed.proj.weight" in report.new
    else:
        torch.testing.assert_close(own["patch_embed.proj.bias"], state["patch_embed.proj.bias"], rtol=0, atol=0)
    if name == "mae":
        assert report.new == ["blocks.0.attn.rel_pos_h", "blocks.0.attn.rel_pos_w", "blocks.1.attn.rel_pos_h",
                              "blocks.1.attn.rel_pos_w"]


def test_module_default_converter_is_used_without_one(tmp_path):
    module, path, _ = _dinov2_case(tmp_path)  # ViT's default ("timm") resizes the kernel to the model's too
    assert load_weights(module, path).converter == "timm"
    assert module.patch_embed.proj.weight.shape == (64, 3, 16, 16)
    module, path, _ = _hybrid_vit_case(tmp_path)
    assert load_weights(module, path).converter == "hybrid_vit"


# --- a config's pretrained ------------------------------------------------------------------------------------------


def test_config_pretrained_loads_after_build(tmp_path):
    state = timm_layout(num_classes=0)
    torch.save({"model": state}, tmp_path / "mae_pretrain_vit_base.pth")
    vit_cfg = dict(type=ViT, img_size=64, embed_dim=64, depth=2, num_heads=2, use_rel_pos=True)
    cfg = dict(type=SimpleFeaturePyramid, out_channels=32,
               backbone=dict(vit_cfg, pretrained=str(tmp_path / "mae_pretrain_vit_base.pth")))
    sfp = build(cfg, "model.backbone")
    for key in ("pos_embed", "patch_embed.proj.weight", "blocks.1.attn.qkv.weight"):
        torch.testing.assert_close(sfp.backbone.state_dict()[key], state[key], rtol=0, atol=0)
    # dict form: converter and strictness named
    torch.save({"state_dict": {k: v + 1 for k, v in sfp.state_dict().items()}}, tmp_path / "sfp.pth")
    again = build(dict(cfg, pretrained=dict(path=tmp_path / "sfp.pth", converter="densevit", strict=True)))
    torch.testing.assert_close(again.simfp_2[0].weight, sfp.simfp_2[0].weight + 1, rtol=0, atol=0)
    assert build(dict(vit_cfg, pretrained=None)).pos_embed.abs().sum() > 0  # None loads nothing


def test_config_pretrained_errors_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"model\.backbone\.pretrained: unknown key\(s\) 'convert'"):
        build(dict(type=ViT, depth=1, pretrained=dict(path="x.pth", convert="timm")), "model.backbone")
    with pytest.raises(ConfigError, match=r"model\.backbone\.pretrained: expected a file path"):
        build(dict(type=ViT, depth=1, pretrained=True), "model.backbone")
    with pytest.raises(ConfigError, match=r"cfg\.pretrained: only a component that builds an nn\.Module"):
        build(dict(type=dict, pretrained="x.pth"))
    with pytest.raises(FileNotFoundError, match=r"model\.backbone\.pretrained: checkpoint file nope\.pth"):
        build(dict(type=ViT, depth=1, pretrained="nope.pth"), "model.backbone")


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


def test_convert_cli_converts_a_whole_detector_for_a_config(tmp_path, monkeypatch):
    """--config: the whole detector's checkpoint, loadable strictly; a file that does not fit is refused, named."""
    config = write_config({"model": tiny_detector_config(cascade=False)}, tmp_path / "tiny_detector.py")
    state = detectron2_detector_state(build(tiny_detector_config(cascade=False)), cascade=False)
    src, dst = tmp_path / "model_final.pkl", tmp_path / "detector.pth"
    with src.open("wb") as f:
        pickle.dump({"model": state}, f)
    monkeypatch.setattr(sys, "argv", ["convert_checkpoint.py", str(src), str(dst), "--format", "detectron2",
                                      "--config", str(config)])
    runpy.run_path(str(TOOL), run_name="__main__")
    model = build(tiny_detector_config(cascade=False))
    model.load_state_dict(torch.load(dst, weights_only=True)["state_dict"])  # strict
    fc = model.roi_heads.box_head[3].weight.detach().numpy()
    np.testing.assert_array_equal(fc, state["roi_heads.box_head.fc1.weight"])
    with src.open("wb") as f:
        pickle.dump({"model": {k: v for k, v in state.items() if "mask_head" not in k}}, f)
    with pytest.raises(ValueError, match=r"model_final\.pkl.*roi_heads\.mask_head"):
        runpy.run_path(str(TOOL), run_name="__main__")


def fake_timm_cache(tmp_path: Path, monkeypatch) -> tuple[nn.Module, Path]:
    """A Hugging Face cache under tmp_path, laid out as huggingface_hub writes it, holding the safetensors file timm
    would download for resnet18.a1_in1k (a freshly initialised resnet18's); returns that model and the file."""
    import huggingface_hub.constants
    import timm
    from safetensors.torch import save_file

    repo = tmp_path / "models--timm--resnet18.a1_in1k"
    snapshot = repo / "snapshots" / "0123abc"
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abc")
    source = timm.create_model("resnet18", pretrained=False)
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(snapshot / "model.safetensors"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    return source, snapshot / "model.safetensors"


def test_pretrained_may_name_a_timm_model_found_in_the_local_cache(tmp_path, monkeypatch):
    """``timm:<name>`` loads the file timm downloaded, from the Hugging Face cache, without the network."""
    from densevit.backbones.timm_backbone import TimmBackbone
    from densevit.checkpoint import resolve_weights

    source, cached = fake_timm_cache(tmp_path, monkeypatch)
    assert resolve_weights("timm:resnet18.a1_in1k") == cached
    backbone = TimmBackbone("resnet18", out_indices=(1, 2, 3, 4))
    load_weights(backbone, "timm:resnet18.a1_in1k")
    torch.testing.assert_close(backbone.state_dict()["body.conv1.weight"], source.conv1.weight)
    with pytest.raises(FileNotFoundError, match=r"resnet50.a1_in1k.*not in the local Hugging Face cache.*"
                                                r"timm.create_model\('resnet50.a1_in1k', pretrained=True\)"):
        resolve_weights("timm:resnet50.a1_in1k")
    with pytest.raises(ValueError, match="timm knows no pretrained model 'no_such_net'"):
        resolve_weights("timm:no_such_net")


def test_timm_backbone_pretrained_true_loads_timms_cached_weights(tmp_path, monkeypatch):
    """``TimmBackbone(pretrained=True)`` (in Python or a config) is ``pretrained="timm:<name>"``: timm's default tag
    from the local cache, and offline without the file an error saying how to fetch it."""
    from densevit.backbones.timm_backbone import TimmBackbone

    source, _ = fake_timm_cache(tmp_path, monkeypatch)  # resnet18's default tag is a1_in1k
    backbone = TimmBackbone("resnet18", out_indices=(1, 2, 3, 4), pretrained=True)
    torch.testing.assert_close(backbone.state_dict()["body.layer4.1.conv2.weight"], source.layer4[1].conv2.weight)
    built = build(dict(type=TimmBackbone, model_name="resnet18.a1_in1k", pretrained=True), "model.backbone")
    torch.testing.assert_close(built.state_dict()["body.conv1.weight"], source.conv1.weight)
    with pytest.raises(FileNotFoundError, match=r"timm:resnet10t: the weights of 'resnet10t' "
                                                r"\(timm/resnet10t.c3_in1k\) are not in the local Hugging Face cache"):
        TimmBackbone("resnet10t", pretrained=True)

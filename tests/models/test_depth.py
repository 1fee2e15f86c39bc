"""DepthEstimator modes, flip test and test-time resizing, learning, depth pictures, and the depth configs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from densevit.backbones.vit import ViT
from densevit.config import build, load_config, to_plain
from densevit.engine.data import DataPreprocessor, collate
from densevit.engine.model import RunnerModel
from densevit.models.base import SupportsTTA
from densevit.models.depth import DepthEstimator, depth_to_original, flip_within
from densevit.vis.depth import depth_colors, depth_to_png16, draw_depth

ROOT = Path(__file__).resolve().parents[2]


def tiny_model(**kwargs) -> RunnerModel:
    torch.manual_seed(0)
    backbone = ViT(embed_dim=64, depth=4, num_heads=2, img_size=64, out_indices=(0, 1, 2, 3))
    return RunnerModel(DepthEstimator(backbone=backbone, reassemble_channels=(8, 16, 32, 64), features=16,
                                      min_depth=0.1, max_depth=10.0, **kwargs), DataPreprocessor(size_divisor=32))


def batch(model: RunnerModel, shapes=((40, 56), (64, 48)), seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    items = []
    for i, (h, w) in enumerate(shapes):
        gt = torch.rand(h, w, generator=g) * 8 + 1
        gt[:4] = 0.0  # rows without measurements
        items.append({"inputs": torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=g),
                      "data_samples": {"img_id": i, "ori_shape": (h, w), "img_shape": (h, w), "scale_factor": (1, 1),
                                       "gt_depth": gt}})
    return model.data_preprocessor(collate(items), True)


def test_modes_and_original_resolution_outputs():
    model = tiny_model()
    data = batch(model)
    losses = model(**data, mode="loss")
    assert set(losses) == {"loss_silog"} and losses["loss_silog"].item() > 0
    depth = model(data["inputs"], mode="tensor")
    assert depth.shape == (2, 64, 64)
    model.eval()
    with torch.no_grad():
        preds = model(**data, mode="predict")
    for pred, shape in zip(preds, ((40, 56), (64, 48)), strict=True):
        assert pred["depth"].shape == shape and pred["gt_depth"].shape == shape
        assert pred["depth"].dtype == torch.float32 and (pred["depth"] > 0.1).all() and (pred["depth"] < 10).all()
    torch.testing.assert_close(preds[0]["depth"], depth[0, :40, :56])


def test_gradient_matching_term_is_optional():
    model = tiny_model(grad_weight=0.5)
    losses = model(**batch(model), mode="loss")
    assert set(losses) == {"loss_silog", "loss_grad"} and losses["loss_grad"].item() > 0


def test_loss_ignores_padding_and_invalid_pixels():
    model = tiny_model()
    data = batch(model)
    base = model(**data, mode="loss")["loss_silog"]
    for sample in data["data_samples"]:  # out-of-range values count as invalid, like the 0 padding
        sample["gt_depth"][:4] = 50.0
    torch.testing.assert_close(model(**data, mode="loss")["loss_silog"], base)


def test_flip_within_mirrors_each_valid_region_only():
    x = torch.arange(2 * 3 * 4, dtype=torch.float32).view(2, 1, 3, 4)
    out = flip_within(x, [(2, 3), (3, 4)])
    torch.testing.assert_close(out[0, 0, :2, :3], x[0, 0, :2, :3].flip(-1))
    torch.testing.assert_close(out[0, 0, 2], x[0, 0, 2])  # padding row untouched
    torch.testing.assert_close(out[0, 0, :, 3], x[0, 0, :, 3])  # padding column untouched
    torch.testing.assert_close(out[1], x[1].flip(-1))
    torch.testing.assert_close(flip_within(out, [(2, 3), (3, 4)]), x)


def test_flip_test_averages_with_the_mirrored_image():
    model = tiny_model().eval()
    data = batch(model, shapes=((64, 64), (64, 64)))  # no padding: mirroring the batch mirrors each image
    flipped_model = tiny_model(flip_test=True).eval()
    with torch.no_grad():
        plain = model(**data, mode="predict")
        both = flipped_model(**data, mode="predict")
        mirrored = model(data["inputs"].flip(-1)).flip(-1)
    for i in range(2):
        torch.testing.assert_close(both[i]["depth"], 0.5 * (plain[i]["depth"] + mirrored[i]), rtol=1e-5, atol=1e-5)
    assert not torch.allclose(both[0]["depth"], plain[0]["depth"], atol=1e-3)


def test_set_tta_switches_the_flip_test():
    model = tiny_model().eval()
    assert isinstance(model.model, SupportsTTA) and not model.model.flip_test
    assert "mirror" in model.model.set_tta(True) and model.model.flip_test
    model.model.set_tta(False)
    assert not model.model.flip_test


def test_test_size_runs_at_that_size_and_returns_the_original_resolution():
    model = tiny_model(test_size=(32, 32)).eval()
    data = batch(model)
    seen = []
    model.model.backbone.register_forward_hook(lambda m, i, o: seen.append(tuple(i[0].shape[-2:])))
    with torch.no_grad():
        preds = model(**data, mode="predict")
    assert seen == [(32, 32)]
    assert [tuple(p["depth"].shape) for p in preds] == [(40, 56), (64, 48)]


def test_depth_to_original_crops_then_resizes():
    depth = torch.arange(16.0).view(4, 4)
    torch.testing.assert_close(depth_to_original(depth, (2, 2), (2, 2)), depth[:2, :2])
    assert depth_to_original(depth, (2, 2), (4, 6)).shape == (4, 6)


def test_training_steps_reduce_the_loss():
    model = tiny_model()
    data = batch(model, shapes=((32, 32), (32, 32)))
    rows = torch.linspace(1.0, 9.0, 32)[:, None].expand(32, 32)
    for sample in data["data_samples"]:  # a learnable target: depth grows down the image
        sample["gt_depth"] = rows.clone()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(12):
        loss = model(**data, mode="loss")["loss_silog"]
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert losses[-1] < 0.6 * losses[0]


def test_head_must_fit_the_backbone():
    with pytest.raises(ValueError, match="4 input maps"):
        DepthEstimator(backbone=ViT(embed_dim=64, depth=2, num_heads=2, img_size=64))  # one out index


# --- pictures ----------------------------------------------------------------------------------------------


def test_draw_depth_has_a_colour_bar_and_near_is_bright():
    depth = np.tile(np.linspace(1.0, 9.0, 80, dtype=np.float32), (60, 1))
    picture = draw_depth(torch.from_numpy(depth), 0.0, 10.0)
    assert picture.dtype == np.uint8 and picture.shape[0] == 60 and picture.shape[1] > 80
    np.testing.assert_array_equal(picture[:, :80], depth_colors(depth, 0.0, 10.0))
    assert picture[:, 0].astype(int).sum() > picture[:, 79].astype(int).sum()  # near (left) brighter than far
    bar = picture[:, 80:]
    assert (bar == 255).all(axis=2).any() and (bar < 128).any()  # white panel with a scale and dark labels
    assert (depth_colors(np.array([[np.nan]]), 0, 10) == 0).all()


def test_depth_to_png16_rounds_millimetres_and_saturates():
    png = depth_to_png16(np.array([[0.0, 1.2344, 1.2346, 70.0, -1.0, np.nan]]))
    assert png.dtype == np.uint16
    np.testing.assert_array_equal(png, [[0, 1234, 1235, 65535, 0, 0]])
    np.testing.assert_array_equal(depth_to_png16(np.array([[2.0]]), depth_scale=256.0), [[512]])


# --- configs -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["dpt_vit_b_nyu", "dpt_vit_b_sfp_nyu", "dpt_vit_comer_b_nyu"])
def test_nyu_configs_load_and_build_on_the_meta_device(name):
    cfg = to_plain(load_config(ROOT / "configs" / "depth" / f"{name}.py"))
    backbone = cfg["model"]["backbone"]
    backbone.get("backbone", backbone)["pretrained"] = None
    with torch.device("meta"):
        model = build(cfg["model"], "model")
    assert isinstance(model, DepthEstimator) and model.flip_test
    assert model.head.reassemble[3][0].out_channels == 768 and model.head.project[0].out_channels == 128
    assert cfg["val_evaluator"]["crop"] == "eigen" and cfg["val_evaluator"]["max_depth"] == 10.0
    assert cfg["train_dataloader"]["dataset"]["transforms"]["crop_size"] == (416, 544)


def test_quickstart_config_builds_model_and_datasets(tmp_path):
    from densevit.datasets.demo import generate_demo_dataset

    root = generate_demo_dataset(tmp_path / "demo", num_train=2, num_val=2, tasks=("depth",), progress=False)
    cfg = to_plain(load_config(ROOT / "configs" / "quickstart" / "dpt_vit_tiny_demo.py"))
    model = build(cfg["model"], "model")
    assert isinstance(model, DepthEstimator) and model.test_size == (128, 128)
    for key, split in (("train_dataloader", "train"), ("val_dataloader", "val")):
        dataset_cfg = dict(cfg[key]["dataset"], data_root=str(root), split_file=str(root / "depth" / f"{split}.txt"))
        dataset = build(dataset_cfg, key)
        assert len(dataset) == 2
        shape = dataset[0]["data_samples"]["gt_depth"].shape
        assert shape == ((128, 128) if split == "train" else (256, 256))
    evaluator = build(cfg["val_evaluator"], "val_evaluator")
    assert evaluator.crop is None and evaluator.max_depth > 12.0  # the demo's wall reaches 12 m

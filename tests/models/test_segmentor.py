"""Segmentor: losses, whole/slide/TTA inference in original coordinates, configs, and the segmentation pictures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from densevit.backbones.interface import ShapeSpec
from densevit.config import build, load_config, to_plain
from densevit.datasets.demo import generate_demo_dataset
from densevit.engine.data import collate
from densevit.heads.seg_heads import FCNHead, MLPHead
from densevit.heads.uper import UPerHead
from densevit.models.base import Batch, SupportsTTA
from densevit.models.segmentor import Segmentor, seg_cross_entropy, slide_inference
from densevit.vis.segmentation import draw_segmentation, sem_seg_to_png

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
NUM_CLASSES = 4


class PixelAdapter(nn.Module):
    """The image itself as a stride-1 'feature map' (adapter interface)."""

    output_shapes = (ShapeSpec(3, 1),)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [x]


def pixel_model(**kwargs) -> Segmentor:
    """A per-pixel model (1x1 convs only): translation-equivariant, so windows cannot change its output."""
    torch.manual_seed(0)
    head = MLPHead((3,), NUM_CLASSES, channels=8)
    return Segmentor(backbone=PixelAdapter(), decode_head=head, decode_strides=(1,), **kwargs).eval()


def test_slide_equals_whole_for_a_per_pixel_model():
    image = torch.randn(2, 3, 70, 90)  # larger than the crop in both directions, not a multiple of the stride
    whole = pixel_model(test_mode="whole").image_logits(image, (70, 90))
    slide = pixel_model(test_mode="slide", crop_size=32, crop_stride=21).image_logits(image, (70, 90))
    assert whole.shape == (2, NUM_CLASSES, 70, 90)
    torch.testing.assert_close(slide, whole, rtol=1e-5, atol=1e-6)


def test_slide_windows_follow_mmseg():
    seen = []

    def record(window: torch.Tensor) -> torch.Tensor:
        seen.append(tuple(window.shape[-2:]))
        return torch.ones(window.shape[0], 2, *window.shape[-2:])

    out = slide_inference(record, torch.zeros(1, 3, 512, 683), (512, 512), (341, 341), 2)
    assert seen == [(512, 512), (512, 512)]  # columns at 0 and 683 - 512
    torch.testing.assert_close(out, torch.ones(1, 2, 512, 683))  # averaged where the windows overlap
    seen.clear()
    slide_inference(record, torch.zeros(1, 3, 300, 1100), (512, 512), (341, 341), 2)
    assert seen == [(300, 512)] * 3  # a side smaller than the crop is taken whole


def test_predict_returns_labels_in_original_coordinates():
    model = pixel_model(test_mode="slide", crop_size=16, crop_stride=11, test_scale=(64, 32))
    inputs = torch.randn(2, 3, 64, 64)  # a padded batch: image 0 is 40x56, image 1 fills it
    gt = torch.full((2, 64, 64), 255, dtype=torch.long)
    samples = [{"img_shape": (40, 56), "ori_shape": (80, 112), "gt_sem_seg": gt[0]},
               {"img_shape": (64, 64), "ori_shape": (64, 64), "gt_sem_seg": gt[1]}]
    out = model.predict(Batch(inputs, samples))
    assert out[0]["sem_seg"].shape == (80, 112) and out[0]["sem_seg"].dtype == torch.long
    assert out[0]["gt_sem_seg"].shape == (40, 56)  # batch padding removed
    assert out[1]["sem_seg"].shape == (64, 64)
    assert set(out[0]) == {"img_shape", "ori_shape", "gt_sem_seg", "sem_seg"}  # no logits kept
    # whole-image reference: crop, resize to the test scale (short side 32), logits back to the original size
    image = F.interpolate(inputs[:1, :, :40, :56], size=(32, 45), mode="bilinear", align_corners=False)
    logits = model.decode_head([image])
    expected = F.interpolate(logits, size=(80, 112), mode="bilinear", align_corners=False).argmax(1)[0]
    assert (out[0]["sem_seg"] == expected).float().mean() > 0.99


def test_set_tta_adds_mirrored_views_to_the_scales_and_off_leaves_one_view():
    model = pixel_model(tta_scales=(0.5, 1.0))
    assert isinstance(model, SupportsTTA)
    assert model.set_tta(True) == "views at scales 0.5, 1 and their mirror images"
    assert model.tta_flip and model.tta_scales == (0.5, 1.0)
    assert model.set_tta(False) == "views at scales 1" and not model.tta_flip and model.tta_scales == (1.0,)


def test_flip_and_multiscale_tta_average_probabilities():
    image = torch.randn(1, 3, 24, 24)
    plain = pixel_model().image_logits(image, (24, 24))
    tta = pixel_model(tta_scales=(1.0, 1.0), tta_flip=True).image_logits(image, (24, 24))
    # a per-pixel model sees the same pixel in all four views: the mean probability is its softmax
    torch.testing.assert_close(tta, plain.softmax(1), rtol=1e-5, atol=1e-6)
    scaled = pixel_model(tta_scales=(0.5, 1.5)).image_logits(image, (24, 24))
    assert scaled.shape == (1, NUM_CLASSES, 24, 24)
    torch.testing.assert_close(scaled.sum(1), torch.ones(1, 24, 24))


def test_losses_ignore_label_and_class_weight():
    logits = torch.randn(2, NUM_CLASSES, 8, 8, requires_grad=True)
    target = torch.randint(0, NUM_CLASSES, (2, 16, 16))
    target[:, :4] = 255
    weight = torch.tensor([1.0, 2.0, 0.5, 3.0])
    up = F.interpolate(logits, size=(16, 16), mode="bilinear", align_corners=False)
    valid = target != 255
    manual = F.cross_entropy(up.permute(0, 2, 3, 1)[valid], target[valid], weight=weight, reduction="sum")
    expected = manual / weight[target[valid]].sum()
    torch.testing.assert_close(seg_cross_entropy(logits, target, 255, weight), expected)
    empty = seg_cross_entropy(logits, torch.full((2, 16, 16), 255), 255)
    empty.backward()
    assert empty.item() == 0.0 and torch.isfinite(logits.grad).all()


def test_segmentor_checks_its_parts():
    missing = r"no level with stride \[4, 8, 16, 32\]; the backbone's levels have strides \(1,\)"
    with pytest.raises(ValueError, match=missing):
        Segmentor(backbone=PixelAdapter(), decode_head=MLPHead((3,), 2))
    with pytest.raises(ValueError, match=r"decode_head expects input channels \(5,\)"):
        Segmentor(backbone=PixelAdapter(), decode_head=MLPHead((5,), 2), decode_strides=(1,))
    with pytest.raises(ValueError, match="aux_head has 3 classes"):
        Segmentor(backbone=PixelAdapter(), decode_head=MLPHead((3,), 2), decode_strides=(1,),
                  aux_head=FCNHead(3, 3), aux_stride=1)
    with pytest.raises(ValueError, match="test_mode"):
        Segmentor(backbone=PixelAdapter(), decode_head=MLPHead((3,), 2), decode_strides=(1,), test_mode="sliding")


# --- configs ------------------------------------------------------------------------------------------------

# config -> key of its pretrained path, lr, layer decay, published parameter count (millions) of the whole UperNet
ADE_CONFIGS = {
    "upernet/upernet_vit_b_sfp_ade20k_160k.py": ("model.backbone.backbone.pretrained", 1e-4, 0.65, None),
    "vit_comer/upernet_vit_comer_t_ade20k_160k.py": ("model.backbone.pretrained", 12e-5, 0.95, 38.7),
    "vit_comer/upernet_vit_comer_s_ade20k_160k.py": ("model.backbone.pretrained", 6e-5, 0.95, 61.4),
    "vit_comer/upernet_vit_comer_b_ade20k_160k.py": ("model.backbone.pretrained", 6e-5, 0.9, 144.7),
}


@pytest.mark.parametrize("name", sorted(ADE_CONFIGS))
def test_ade20k_configs_build_on_the_meta_device(name):
    key, lr, layer_decay, params = ADE_CONFIGS[name]
    if "vit_comer" in name:
        pytest.importorskip("densevit.adapters.vit_comer")
    cfg = load_config(CONFIGS / name, {key: None})
    with torch.device("meta"):  # full size without allocating memory
        model = build(to_plain(cfg.model), "model")
    assert isinstance(model.decode_head, UPerHead) and model.decode_head.num_classes == 150
    assert model.test_mode == "slide" and model.crop_size == (512, 512) and model.crop_stride == (341, 341)
    assert model.test_scale == (2048, 512) and model.aux_weight == 0.4
    assert cfg.train_cfg.max_iters == 160000 and cfg.train_dataloader.batch_size * 8 == 16
    if params is not None:
        assert sum(p.numel() for p in model.parameters()) / 1e6 == pytest.approx(params, abs=0.05)
    assert cfg.optimizer.lr == pytest.approx(lr) and cfg.optimizer.layer_decay == layer_decay


def test_quickstart_config_runs_on_demo_data(tmp_path):
    root = generate_demo_dataset(tmp_path / "demo", num_train=2, num_val=2, image_size=64, tasks=("semantic",),
                                 progress=False)
    cfg = load_config(CONFIGS / "quickstart" / "upernet_vit_tiny_demo.py")
    for loader in ("train_dataloader", "val_dataloader"):
        split = "train" if loader.startswith("train") else "val"
        cfg[loader].dataset.update(img_dir=str(root / split), ann_dir=str(root / "semantic" / split))
    model = build(to_plain(cfg.model), "model")
    train_set = build(to_plain(cfg.train_dataloader.dataset), "train_dataloader.dataset")
    val_set = build(to_plain(cfg.val_dataloader.dataset), "val_dataloader.dataset")
    evaluator = build(to_plain(cfg.val_evaluator), "val_evaluator")
    evaluator.print_fn = None
    preprocess = build(to_plain(cfg.data_preprocessor), "data_preprocessor")
    losses = model.loss(Batch(*preprocess(collate([train_set[0], train_set[1]]), True).values()))
    (losses["loss_seg"] + losses["loss_aux"]).backward()
    model.eval()
    with torch.no_grad():
        preds = model.predict(Batch(*preprocess(collate([val_set[0], val_set[1]]), False).values()))
    assert preds[0]["sem_seg"].shape == (64, 64) == preds[0]["gt_sem_seg"].shape
    metrics = evaluator.compute([evaluator.process(p) for p in preds])
    assert set(metrics) == {"aAcc", "mIoU", "mAcc"} and 0.0 <= metrics["aAcc"] <= 100.0


# --- pictures -----------------------------------------------------------------------------------------------


def test_draw_segmentation_tints_classes_and_adds_a_legend():
    image = np.full((40, 60, 3), 100, np.uint8)
    sem_seg = torch.zeros(40, 60, dtype=torch.long)
    sem_seg[:, 30:] = 2
    sem_seg[0, 0] = 255  # ignored: left untouched
    out = draw_segmentation(image, sem_seg, ("sky", "tree", "road"), alpha=0.5)
    assert out.dtype == np.uint8 and out.shape[0] >= 40 and out.shape[1] > 60  # legend on the right
    assert (out[0, 0] == 100).all() and (out[40:, :60] == 255).all()  # a taller legend extends the canvas
    assert not np.array_equal(out[5, 5], out[5, 45])  # two classes, two tints
    legend = out[:, 60:]
    assert (legend < 255).any() and (legend == 255).any()
    np.testing.assert_array_equal(draw_segmentation(image, sem_seg, ("sky", "tree", "road"), legend=False),
                                  out[:40, :60])  # a video frame: the overlay alone
    with pytest.raises(ValueError, match="original image coordinates"):
        draw_segmentation(image, sem_seg[:20], ("sky", "tree", "road"))


def test_sem_seg_to_png_keeps_values():
    labels = torch.tensor([[0, 149], [3, 7]])
    assert sem_seg_to_png(labels).dtype == np.uint8
    np.testing.assert_array_equal(sem_seg_to_png(labels, offset=1), [[1, 150], [4, 8]])
    assert sem_seg_to_png(torch.tensor([[300]])).dtype == np.uint16


def test_background_stays_clear_and_the_label_png_keeps_indices_with_a_palette():
    import io

    from PIL import Image

    from densevit.vis.segmentation import label_palette_png

    image = np.full((8, 8, 3), 100, np.uint8)
    sem_seg = np.zeros((8, 8), np.int64)
    sem_seg[:, 4:] = 2
    out = draw_segmentation(image, sem_seg, ("background", "tree", "road"))
    np.testing.assert_array_equal(out[:8, :4], image[:, :4])  # background: untouched
    assert (out[:8, 4:8] != image[:, 4:]).any()  # road: tinted
    png = Image.open(io.BytesIO(label_palette_png(sem_seg, 3)))
    assert png.mode == "P"
    np.testing.assert_array_equal(np.asarray(png), sem_seg)  # raw indices, readable as a label file
    assert png.getpalette()[6:9] != [0, 0, 0]  # class 2 has a visible colour

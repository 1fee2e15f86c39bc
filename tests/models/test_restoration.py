"""The restoration model on every backbone / adapter: shapes, gradients, pixel space, padding, tiling, losses."""

from __future__ import annotations

import pytest
import torch
from tiny_pyramids import tiny_pyramids, tiny_vit
from torch import nn

from densevit.engine.data import DataPreprocessor
from densevit.heads.restoration import RestorationHead, pixel_shuffle_upsampler
from densevit.models.base import Batch
from densevit.models.restoration import (
    ImageRestorer,
    charbonnier_loss,
    l1_loss,
    tile_starts,
    tiled_forward,
)

pytestmark = pytest.mark.usefixtures("one_thread")

PYRAMIDS = tiny_pyramids(16, top_level=False)


def tiny_restorer(backbone: nn.Module, scale: int = 1, **kwargs) -> ImageRestorer:
    return ImageRestorer(backbone=backbone, scale=scale, channels=16, shallow_blocks=1, fuse_blocks=1, **kwargs)


def batch_of(images: list[torch.Tensor], gts: list[torch.Tensor] | None = None) -> Batch:
    """uint8 [3, h, w] images (and gt) through the default (ImageNet) data preprocessor."""
    samples = [{"img_shape": tuple(im.shape[-2:]), "ori_shape": tuple(im.shape[-2:]), "img_path": f"{i}.png"}
               for i, im in enumerate(images)]
    if gts is not None:
        for s, gt in zip(samples, gts, strict=True):
            s["gt"] = gt
    data = DataPreprocessor(size_divisor=1)({"inputs": images, "data_samples": samples})
    return Batch(data["inputs"], data["data_samples"])


@pytest.mark.parametrize("scale", [1, 2, 4])
@pytest.mark.parametrize("name", sorted(PYRAMIDS))
def test_every_backbone_forward_backward(name: str, scale: int) -> None:
    model = tiny_restorer(PYRAMIDS[name](), scale)
    if scale == 1:  # the residual's last conv starts at zero, which would stop every other gradient
        nn.init.normal_(model.head.reconstruct.weight, std=0.01)
    out = model(torch.randn(2, 3, 32, 64))
    assert out.shape == (2, 3, 32 * scale, 64 * scale)
    out.square().mean().backward()
    grads = [p.grad for p in model.head.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.backbone.parameters())


@pytest.mark.parametrize("scale", [1, 3])
def test_plain_vit_maps_share_a_stride(scale: int) -> None:
    model = tiny_restorer(tiny_vit(out_indices=(0, 1)), scale)
    assert model.levels == [0, 1] and model.head.in_strides == (16, 16)
    assert model(torch.randn(1, 3, 32, 48)).shape == (1, 3, 32 * scale, 48 * scale)


@pytest.mark.parametrize("size", [(37, 53), (16, 20)])
def test_any_size_is_padded_and_cropped(size: tuple[int, int]) -> None:
    model = tiny_restorer(PYRAMIDS["vit+simple_pyramid"](), scale=2)
    assert model.size_multiple == 32
    assert model(torch.randn(1, 3, *size)).shape == (1, 3, 2 * size[0], 2 * size[1])


def test_untrained_denoiser_returns_its_input() -> None:
    """The residual head starts at zero, and pixel space is the preprocessor's inverse: output == input."""
    torch.manual_seed(0)
    images = [torch.randint(0, 256, (3, 24, 40), dtype=torch.uint8), torch.randint(0, 256, (3, 30, 20),
                                                                                     dtype=torch.uint8)]
    preds = tiny_restorer(PYRAMIDS["vit+simple_pyramid"]()).eval().predict(batch_of(images))
    for image, pred in zip(images, preds, strict=True):
        assert pred["restored"].dtype == torch.uint8 and torch.equal(pred["restored"], image)


def test_untrained_sr_model_with_image_residual_returns_bicubic_upsampling() -> None:
    model = tiny_restorer(PYRAMIDS["vit+simple_pyramid"](), scale=2, image_residual=True).eval()
    assert model.head.image_residual
    assert not tiny_restorer(PYRAMIDS["vit+simple_pyramid"](), scale=2).head.image_residual  # SwinIR's default
    pixels = torch.rand(1, 3, 32, 32)
    inputs = (pixels * 255 - model.mean) / model.std
    with torch.no_grad():
        expected = torch.nn.functional.interpolate(pixels, scale_factor=2, mode="bicubic", align_corners=False)
        torch.testing.assert_close(model(inputs), expected, atol=1e-5, rtol=0)


def test_loss_and_predict_at_gt_size() -> None:
    torch.manual_seed(0)
    model = tiny_restorer(PYRAMIDS["vit_comer+fpn"](), scale=2, loss_fn=charbonnier_loss)
    images = [torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8) for _ in range(2)]
    gts = [torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8) for _ in range(2)]
    batch = batch_of(images, gts)
    losses = model.loss(batch)
    assert set(losses) == {"loss_pixel"} and losses["loss_pixel"] > 0
    losses["loss_pixel"].backward()
    preds = model.eval().predict(batch)
    assert [tuple(p["restored"].shape) for p in preds] == [(3, 64, 64)] * 2
    with pytest.raises(ValueError, match=r"1\.png: gt is \(60, 64\), expected 64x64"):
        model.loss(batch_of(images, [gts[0], gts[1][:, :60]]))
    with pytest.raises(KeyError, match=r"samples \[0, 1\] of the batch have no 'gt'"):
        model.loss(batch_of(images))


def test_losses() -> None:
    pred, target = torch.tensor([0.0, 0.5, 1.0]), torch.tensor([0.0, 0.25, 0.0])
    assert l1_loss(pred, target).item() == pytest.approx(1.25 / 3)
    expected = (1e-3 + (0.25**2 + 1e-6) ** 0.5 + (1 + 1e-6) ** 0.5) / 3
    assert charbonnier_loss(pred, target).item() == pytest.approx(expected, rel=1e-6)


def test_tile_starts_follow_swinir() -> None:
    assert tile_starts(100, 48, 16) == [0, 32, 52]
    assert tile_starts(96, 48, 16) == [0, 32, 48]
    assert tile_starts(40, 48, 16) == [0]


def test_tiled_equals_whole_for_a_pointwise_network() -> None:
    """Receptive field of one pixel: every tile computes the same values, so the average is the whole output."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(3, 3, 1))
    x = torch.randn(1, 3, 70, 90)
    with torch.no_grad():
        torch.testing.assert_close(tiled_forward(net, x, 32, 8, scale=2), net(x))


def test_tiled_model_equals_whole_when_one_tile_covers_the_image() -> None:
    model = tiny_restorer(PYRAMIDS["hybrid_vit+simple_pyramid"](), scale=2, tile=64, tile_overlap=16).eval()
    x = torch.randn(1, 3, 40, 64)
    with torch.no_grad():
        torch.testing.assert_close(model.restore(x), model(x))
        model.tile = 32  # several tiles: same size, values averaged
        assert model.restore(x).shape == (1, 3, 80, 128)


def test_tile_not_larger_than_overlap_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"tile \(32\) must be larger than tile_overlap \(32\)"):
        tiny_restorer(PYRAMIDS["vit+simple_pyramid"](), tile=32, tile_overlap=32)
    with pytest.raises(ValueError, match="tile larger than the overlap"):
        tiled_forward(nn.Identity(), torch.zeros(1, 3, 8, 8), 16, 20)


def test_head_errors() -> None:
    with pytest.raises(ValueError, match="powers of 2"):
        RestorationHead([8], [12])
    with pytest.raises(ValueError, match="factors 2\\^n and 3"):
        pixel_shuffle_upsampler(8, 5)
    with pytest.raises(ValueError, match="no backbone map has stride <= max_stride=8"):
        tiny_restorer(tiny_vit(), max_stride=8)

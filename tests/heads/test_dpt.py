"""DPT head on every feature source (ViT token maps and every adapter) and the depth losses."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from tiny_pyramids import tiny_pyramids
from torch import nn

from densevit.backbones.hybrid_vit import HybridViT
from densevit.backbones.vit import ViT
from densevit.heads.dpt import DPT_SIZES, DPTHead, bound_depth, gradient_matching_loss, silog_loss

TINY_VIT = dict(embed_dim=64, depth=4, num_heads=2, img_size=64)
SMALL_HEAD = dict(reassemble_channels=(8, 16, 32, 64), features=16)


def vit_tokens() -> nn.Module:
    return ViT(**TINY_VIT, out_indices=(0, 1, 2, 3))


def hybrid_vit_maps() -> nn.Module:
    """DPT-Hybrid's layout: stem maps at strides 4 and 8, two token maps at 16."""
    return HybridViT(**TINY_VIT, stem_widths=(8, 16, 32, 64), stem_out_indices=(1, 2), out_indices=(1, 3))


FEATURE_SOURCES = {"vit_tokens": vit_tokens, "hybrid_vit": hybrid_vit_maps, **tiny_pyramids(32, top_level=False)}


@pytest.mark.parametrize("source", sorted(FEATURE_SOURCES))
def test_forward_backward_on_every_feature_source(source):
    torch.manual_seed(0)
    backbone = FEATURE_SOURCES[source]()
    channels, strides = zip(*((s.channels, s.stride) for s in backbone.output_shapes), strict=True)
    head = DPTHead(channels, strides, **SMALL_HEAD, min_depth=0.5, max_depth=8.0)
    x = torch.randn(2, 3, 64, 96)
    depth = head(backbone(x), x.shape[-2:])
    assert depth.shape == (2, 1, 64, 96)
    assert depth.min() > 0.5 and depth.max() < 8.0
    depth.log().mean().backward()
    for name, p in (*backbone.named_parameters(), *head.named_parameters()):
        if p.requires_grad and "rel_pos" not in name:
            assert p.grad is not None, f"{source}: {name} got no gradient"


def test_token_maps_are_resampled_to_strides_4_to_32_a_pyramid_is_not_and_a_hybrid_partly():
    sizes = []
    tokens = DPTHead((64,) * 4, (16,) * 4, **SMALL_HEAD)
    for module in tokens.reassemble:
        module.register_forward_hook(lambda m, i, o: sizes.append(tuple(o.shape[-2:])))
    tokens([torch.randn(1, 64, 6, 8) for _ in range(4)], (96, 128))
    assert sizes == [(24, 32), (12, 16), (6, 8), (3, 4)]  # x4, x2, x1, x0.5 of the 6x8 token grid
    sizes.clear()
    pyramid = DPTHead((32,) * 4, (4, 8, 16, 32), **SMALL_HEAD)
    for module in pyramid.reassemble:
        module.register_forward_hook(lambda m, i, o: sizes.append(tuple(o.shape[-2:])))
    maps = [torch.randn(1, 32, 24 // 2**i, 32 // 2**i) for i in range(4)]
    pyramid(maps, (96, 128))
    assert sizes == [(24, 32), (12, 16), (6, 8), (3, 4)]
    assert all(isinstance(m[1], nn.Identity) for m in pyramid.reassemble)
    sizes.clear()
    hybrid = DPTHead((32,) * 4, (4, 8, 16, 16), **SMALL_HEAD)  # DPT-Hybrid: the last token map is halved
    for module in hybrid.reassemble:
        module.register_forward_hook(lambda m, i, o: sizes.append(tuple(o.shape[-2:])))
    hybrid([torch.randn(1, 32, 24, 32), torch.randn(1, 32, 12, 16)] + [torch.randn(1, 32, 6, 8)] * 2, (96, 128))
    assert sizes == [(24, 32), (12, 16), (6, 8), (3, 4)]


def test_odd_token_grids_work():
    head = DPTHead((64,) * 4, (16,) * 4, **SMALL_HEAD)
    depth = head([torch.randn(1, 64, 5, 7) for _ in range(4)], (80, 112))
    assert depth.shape == (1, 1, 80, 112)


def test_half_resolution_output_runs_the_last_convs_at_stride_2_and_upsamples_the_logits():
    torch.manual_seed(0)
    full = DPTHead((64,) * 4, (16,) * 4, **SMALL_HEAD)
    half = DPTHead((64,) * 4, (16,) * 4, **SMALL_HEAD, full_res_output=False)
    half.load_state_dict(full.state_dict())  # same parameters: only where the convs run differs
    maps = [torch.randn(1, 64, 6, 8) for _ in range(4)]
    sizes = []
    half.out_conv3.register_forward_hook(lambda m, i, o: sizes.append(tuple(o.shape[-2:])))
    depth = half(maps, (96, 128))
    assert sizes == [(48, 64)] and depth.shape == (1, 1, 96, 128)
    # the depth is the upsampled logits of the full head's convs applied at 48x64
    x = full.out_conv1(_fused(full, maps))
    logits = full.out_conv3(F.relu(full.out_conv2(x)))
    expected = bound_depth(F.interpolate(logits, size=(96, 128), mode="bilinear", align_corners=False),
                           full.min_depth, full.max_depth)
    torch.testing.assert_close(depth, expected)


def _fused(head: DPTHead, maps: list[torch.Tensor]) -> torch.Tensor:
    """The fusion chain's stride-2 output, spelled out level by level."""
    levels = [proj(re(f)) for re, proj, f in zip(head.reassemble, head.project, maps, strict=True)]
    x = head.fusion[3](levels[3], None, levels[2].shape[-2:])
    x = head.fusion[2](x, levels[2], levels[1].shape[-2:])
    x = head.fusion[1](x, levels[1], levels[0].shape[-2:])
    return head.fusion[0](x, levels[0], tuple(2 * v for v in levels[0].shape[-2:]))


def test_sizes_table_and_bad_inputs():
    assert DPT_SIZES["base"] == dict(reassemble_channels=(96, 192, 384, 768), features=128)
    assert DPT_SIZES["small"]["features"] == 64 and DPT_SIZES["large"]["features"] == 256
    with pytest.raises(ValueError, match="4 input maps"):
        DPTHead((32,) * 5, (4, 8, 16, 32, 64))
    with pytest.raises(ValueError, match="neither"):
        DPTHead((32,) * 4, (4, 8, 24, 32))
    with pytest.raises(ValueError, match="min_depth"):
        DPTHead((32,) * 4, (16,) * 4, min_depth=5.0, max_depth=1.0)


def test_bound_depth_range():
    logits = torch.tensor([-1e4, -3.0, 0.0, 3.0, 1e4])
    depth = bound_depth(logits, 0.1, 10.0)
    assert depth[2] == pytest.approx(5.05)
    assert (depth >= 0.1).all() and (depth <= 10.0).all()
    assert torch.all(depth[1:] >= depth[:-1])


# --- losses ------------------------------------------------------------------------------------------------


def random_depths(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    gt = torch.rand(2, 12, 16, generator=g) * 9 + 0.5
    pred = gt * torch.exp(0.3 * torch.randn(2, 12, 16, generator=g))
    valid = torch.rand(2, 12, 16, generator=g) > 0.3
    return pred, gt, valid


def test_silog_matches_formula_and_ignores_invalid_pixels():
    pred, gt, valid = random_depths()
    d = [math.log(p) - math.log(t) for p, t, v in zip(pred.flatten().tolist(), gt.flatten().tolist(),
                                                      valid.flatten().tolist(), strict=True) if v]
    mean, mean_sq = sum(d) / len(d), sum(x * x for x in d) / len(d)
    assert silog_loss(pred, gt, valid).item() == pytest.approx(math.sqrt(mean_sq - 0.85 * mean**2), rel=1e-5)
    assert silog_loss(pred, gt, valid, 0.5).item() == pytest.approx(math.sqrt(mean_sq - 0.5 * mean**2), rel=1e-5)
    changed = torch.where(valid, pred, torch.full_like(pred, 123.0))
    assert silog_loss(changed, gt, valid).item() == pytest.approx(silog_loss(pred, gt, valid).item())


def test_silog_is_scale_invariant_at_full_variance_focus_and_zero_without_valid_pixels():
    pred, gt, valid = random_depths(1)
    assert silog_loss(3.0 * gt, gt, valid, variance_focus=1.0).item() == pytest.approx(1e-4, abs=1e-4)
    assert silog_loss(3.0 * gt, gt, valid).item() == pytest.approx(math.sqrt(0.15) * math.log(3.0), rel=1e-4)
    pred.requires_grad_(True)
    empty = silog_loss(pred, gt, torch.zeros_like(valid))
    empty.backward()
    assert empty.item() == 0.0 and torch.equal(pred.grad, torch.zeros_like(pred))


def test_gradient_matching_against_loops():
    pred, gt, valid = random_depths(2)
    r = (pred.log() - gt.log()).tolist()
    v = valid.tolist()
    expected = 0.0
    for k in range(3):
        s = 2**k
        total, count = 0.0, 0
        for b in range(2):
            rows = range(0, 12, s)
            cols = range(0, 16, s)
            count += sum(v[b][i][j] for i in rows for j in cols)
            for i in rows:
                for j in cols:
                    if j + s < 16 and v[b][i][j] and v[b][i][j + s]:
                        total += abs(r[b][i][j + s] - r[b][i][j])
                    if i + s < 12 and v[b][i][j] and v[b][i + s][j]:
                        total += abs(r[b][i + s][j] - r[b][i][j])
        expected += total / count
    assert gradient_matching_loss(pred, gt, valid, num_scales=3).item() == pytest.approx(expected, rel=1e-5)


def test_gradient_matching_is_zero_for_a_scaled_prediction_and_ignores_invalid_pixels():
    _, gt, valid = random_depths(3)
    assert gradient_matching_loss(2.5 * gt, gt, valid).item() == pytest.approx(0.0, abs=1e-6)
    gt_with_holes = torch.where(valid, gt, torch.zeros_like(gt))  # invalid pixels hold 0 (no measurement)
    loss = gradient_matching_loss(2.5 * gt, gt_with_holes, valid)
    assert torch.isfinite(loss) and loss.item() == pytest.approx(0.0, abs=1e-6)

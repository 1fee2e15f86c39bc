"""Multi-scale deformable attention: the embedding-bag op against the grid_sample formula and an explicit loop."""

from __future__ import annotations

import math

import pytest
import torch

from densevit.ops.ms_deform_attn import (
    MSDeformAttn,
    ms_deform_attn,
    ms_deform_attn_grid_sample,
    reference_points,
)

SHAPES = [(6, 5), (3, 4), (2, 1)]  # non-square, one level a single column


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def random_inputs(b=2, lq=7, m=3, d=4, p=2, shapes=SHAPES, dtype=torch.float64, spread=1.4, seed=0):
    """Locations spread beyond [0, 1] so that border and fully-outside samples are exercised."""
    g = torch.Generator().manual_seed(seed)
    s = sum(h * w for h, w in shapes)
    levels = len(shapes)
    value = torch.randn(b, s, m, d, generator=g, dtype=dtype)
    loc = torch.rand(b, lq, m, levels, p, 2, generator=g, dtype=dtype) * spread - (spread - 1) / 2
    weights = torch.rand(b, lq, m, levels, p, generator=g, dtype=dtype)
    return value, shapes, loc, weights


def bilinear_loop(value, shapes, loc, weights):
    """Sample-by-sample bilinear interpolation with zero padding (align_corners=False), in plain Python."""
    b, _, m, d = value.shape
    _, lq, _, _, points, _ = loc.shape
    out = torch.zeros(b, lq, m, d, dtype=value.dtype)
    starts = [0]
    for h, w in shapes:
        starts.append(starts[-1] + h * w)
    for bi in range(b):
        for q in range(lq):
            for mi in range(m):
                for lv, (h, w) in enumerate(shapes):
                    for pi in range(points):
                        x = loc[bi, q, mi, lv, pi, 0].item() * w - 0.5
                        y = loc[bi, q, mi, lv, pi, 1].item() * h - 0.5
                        x0, y0 = math.floor(x), math.floor(y)
                        for yy, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
                            for xx, wx in ((x0, 1 - (x - x0)), (x0 + 1, x - x0)):
                                if 0 <= xx < w and 0 <= yy < h:
                                    v = value[bi, starts[lv] + yy * w + xx, mi]
                                    out[bi, q, mi] += weights[bi, q, mi, lv, pi] * wy * wx * v
    return out.reshape(b, lq, m * d)


def test_matches_explicit_bilinear_loop():
    value, shapes, loc, weights = random_inputs(b=1, lq=4, m=2, d=3)
    torch.testing.assert_close(ms_deform_attn(value, shapes, loc, weights), bilinear_loop(value, shapes, loc, weights),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_matches_grid_sample_formula(dtype, tol):
    value, shapes, loc, weights = random_inputs(dtype=dtype)
    expected = ms_deform_attn_grid_sample(value, shapes, loc, weights)
    torch.testing.assert_close(ms_deform_attn(value, shapes, loc, weights), expected, rtol=tol, atol=tol)


def test_gradients_match_grid_sample_formula():
    inputs = random_inputs()
    grads = []
    for fn in (ms_deform_attn, ms_deform_attn_grid_sample):
        value, shapes, loc, weights = (t.clone().requires_grad_() if torch.is_tensor(t) else t for t in inputs)
        out = fn(value, shapes, loc, weights)
        upstream = torch.randn(out.shape, generator=torch.Generator().manual_seed(1), dtype=out.dtype)
        grads.append(torch.autograd.grad(out, (value, loc, weights), upstream))
    for ours, ref in zip(*grads, strict=True):
        assert ours.abs().sum() > 0
        torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-10)


def test_gradcheck():
    value, shapes, loc, weights = random_inputs(b=1, lq=3, m=2, d=2, p=2, shapes=[(3, 2), (2, 2)], spread=1.2)
    # Random locations are almost surely off the integer pixel coordinates where bilinear sampling has kinks.
    inputs = (value.requires_grad_(), loc.requires_grad_(), weights.requires_grad_())
    assert torch.autograd.gradcheck(lambda v, xy, a: ms_deform_attn(v, shapes, xy, a), inputs, eps=1e-7)


def test_accepts_strided_inputs():
    value, shapes, loc, weights = random_inputs()
    # Attention weights laid out [B, Lq, L*P, M] in memory, as MSDeformAttn produces them.
    strided = weights.flatten(3).transpose(-1, -2).contiguous().transpose(-1, -2).view(weights.shape)
    assert not strided.is_contiguous()
    torch.testing.assert_close(ms_deform_attn(value, shapes, loc, strided), ms_deform_attn(value, shapes, loc, weights))


def test_shape_errors_say_what_is_wrong():
    value, shapes, loc, weights = random_inputs()
    with pytest.raises(ValueError, match="spatial_shapes"):
        ms_deform_attn(value, [(6, 5), (3, 4)], loc, weights)
    with pytest.raises(ValueError, match="attention_weights"):
        ms_deform_attn(value, shapes, loc, weights[..., :1])


def test_reference_points_are_pixel_centres():
    ref = reference_points([(2, 3), (1, 1)], dtype=torch.float64)
    assert ref.shape == (1, 7, 1, 2)
    expected = [(x / 6, y / 4) for y in (1, 3) for x in (1, 3, 5)] + [(0.5, 0.5)]
    torch.testing.assert_close(ref[0, :, 0], torch.tensor(expected, dtype=torch.float64))


def test_module_init_follows_deformable_detr():
    attn = MSDeformAttn(d_model=32, n_levels=2, n_heads=4, n_points=3)
    assert attn.sampling_offsets.weight.abs().sum() == 0 and attn.attention_weights.weight.abs().sum() == 0
    bias = attn.sampling_offsets.bias.view(4, 2, 3, 2)
    # Head 0 points along +x, head 1 along +y (angle pi/2), radius = point index + 1, same on every level.
    torch.testing.assert_close(bias[0, 1], torch.tensor([[1.0, 0.0], [2.0, 0.0], [3.0, 0.0]]))
    torch.testing.assert_close(bias[1, 0, :, 1], torch.tensor([1.0, 2.0, 3.0]))
    assert bias[1, 0, :, 0].abs().max() < 1e-6
    assert attn.value_proj.bias.abs().sum() == 0 and attn.output_proj.bias.abs().sum() == 0


def test_module_matches_explicit_sampling():
    torch.manual_seed(0)
    shapes = [(4, 4), (2, 2)]
    attn = MSDeformAttn(d_model=16, n_levels=2, n_heads=2, n_points=2, value_ratio=0.5).double()
    with torch.no_grad():
        attn.sampling_offsets.weight.normal_(0, 0.1)
        attn.attention_weights.weight.normal_(0, 0.5)
    query = torch.randn(2, 20, 16, dtype=torch.float64)
    value_in = torch.randn(2, 20, 16, dtype=torch.float64)
    ref = reference_points(shapes, dtype=torch.float64)
    out = attn(query, ref, value_in, shapes)
    # The same maths spelled out: offsets in pixels of each level, softmax over levels x points.
    offsets = attn.sampling_offsets(query).view(2, 20, 2, 2, 2, 2)
    loc = ref[:, :, None, :, None, :] + offsets / torch.tensor([[4.0, 4.0], [2.0, 2.0]], dtype=torch.float64)[
        :, None]
    weights = attn.attention_weights(query).view(2, 20, 2, 4).softmax(-1).view(2, 20, 2, 2, 2)
    value = attn.value_proj(value_in).view(2, 20, 2, 4)
    expected = attn.output_proj(bilinear_loop(value, shapes, loc, weights))
    torch.testing.assert_close(out, expected, rtol=1e-10, atol=1e-10)


def test_module_samples_in_float32_under_bf16_autocast():
    torch.manual_seed(0)
    shapes = [(4, 4), (2, 2)]
    attn = MSDeformAttn(d_model=16, n_levels=2, n_heads=2, n_points=2)
    query, value_in = torch.randn(1, 20, 16), torch.randn(1, 20, 16)
    ref = reference_points(shapes)
    full = attn(query, ref, value_in, shapes)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        half = attn(query, ref, value_in, shapes)
    assert half.dtype == torch.bfloat16
    torch.testing.assert_close(half.float(), full, rtol=0.05, atol=0.05)

"""RoIAlign as weighted bags: values and gradients against torchvision's kernel."""

from __future__ import annotations

import pytest
import torch
import torchvision

from densevit.ops.roi_align import multilevel_roi_align, roi_align

# Inside the map, crossing the top-left border, empty, entirely outside, the whole image, and inverted.
ROIS = torch.tensor([[0, 1.0, 2.0, 30.0, 20.0], [1, -10.0, -5.0, 8.0, 7.0], [0, 5.0, 5.0, 5.0, 5.0],
                     [1, 40.0, 30.0, 60.0, 50.0], [1, 0.0, 0.0, 44.0, 36.0], [0, 3.3, 7.7, 2.1, 9.9]],
                    dtype=torch.float64)


@pytest.mark.parametrize("aligned", [True, False])
@pytest.mark.parametrize("sampling_ratio", [0, 1, 2])
def test_roi_align_equals_torchvision_with_gradients(aligned, sampling_ratio):
    g = torch.Generator().manual_seed(sampling_ratio)
    x = torch.randn(2, 3, 9, 11, generator=g, dtype=torch.float64, requires_grad=True)
    upstream = torch.randn(len(ROIS), 3, 5, 5, generator=g, dtype=torch.float64)
    results = []
    for op in (roi_align, torchvision.ops.roi_align):
        out = op(x, ROIS, 5, 0.25, sampling_ratio, aligned)
        results.append((out, *torch.autograd.grad(out, x, upstream)))
    for ours, ref in zip(*results, strict=True):
        assert ref.abs().sum() > 0
        torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)


def test_multilevel_roi_align_reads_each_roi_from_its_level():
    g = torch.Generator().manual_seed(0)
    maps = [torch.randn(2, 4, 32 >> i, 24 >> i, generator=g, dtype=torch.float64, requires_grad=True)
            for i in range(3)]
    rois = torch.cat([torch.randint(0, 2, (12, 1), generator=g), torch.rand(12, 2, generator=g) * 60,
                      torch.rand(12, 2, generator=g) * 60 + 40], dim=1).to(torch.float64)
    levels = torch.arange(12) % 3
    upstream = torch.randn(12, 4, 7, 7, generator=g, dtype=torch.float64)
    out = multilevel_roi_align(maps, rois, levels, 7, [1 / 4, 1 / 8, 1 / 16], sampling_ratio=0)
    grads = torch.autograd.grad(out, maps, upstream)
    for i, (feature, grad) in enumerate(zip(maps, grads, strict=True)):
        idx = levels == i
        ref = torchvision.ops.roi_align(feature, rois[idx], 7, 1 / 4 / 2**i, 0, aligned=True)
        torch.testing.assert_close(out[idx], ref, rtol=1e-12, atol=1e-12)
        (ref_grad,) = torch.autograd.grad(ref, feature, upstream[idx])
        torch.testing.assert_close(grad, ref_grad, rtol=1e-12, atol=1e-12)


def test_roi_align_without_rois_and_with_bad_rois():
    x = torch.randn(1, 3, 8, 8)
    assert roi_align(x, torch.zeros(0, 5), 7).shape == (0, 3, 7, 7)
    with pytest.raises(ValueError, match=r"rois must be \[R, 5\].*\(4, 4\)"):
        roi_align(x, torch.zeros(4, 4), 7)

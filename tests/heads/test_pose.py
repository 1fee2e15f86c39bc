"""Pose heads on every backbone and adapter (forward and backward, tiny), and the joint-weighted MSE."""

from __future__ import annotations

import pytest
import torch

from densevit.backbones.interface import output_shapes
from densevit.backbones.vitpose import ViTPoseBackbone
from densevit.heads.pose import ClassicPoseHead, PyramidPoseHead, SimplePoseHead, joints_mse_loss
from tests.tiny_pyramids import tiny_pyramids, tiny_vit

pytestmark = pytest.mark.usefixtures("one_thread")

K = 3
PYRAMIDS = tiny_pyramids(32, top_level=False)


def run(backbone, head, size, stride=4):
    x = torch.randn(2, 3, *size)
    heatmaps = head(backbone(x))
    assert heatmaps.shape == (2, K, size[0] // stride, size[1] // stride)
    heatmaps.square().mean().backward()
    unused = [n for n, p in [*backbone.named_parameters(), *head.named_parameters()]
              if p.requires_grad and p.grad is None]
    return unused


@pytest.mark.parametrize("head_type", [ClassicPoseHead, SimplePoseHead])
@pytest.mark.parametrize("vit", ["vitpose", "vit"])
def test_vit_heads_forward_backward(vit, head_type):
    if vit == "vitpose":
        backbone, size = ViTPoseBackbone(img_size=(64, 48), embed_dim=64, depth=2, num_heads=4), (64, 48)
    else:
        backbone, size = tiny_vit(), (64, 64)
    head = head_type(output_shapes(backbone, "test")[-1].channels, K)
    assert run(backbone, head, size) == []


@pytest.mark.parametrize("fuse_strides", [(4,), (4, 8, 16, 32)], ids=["stride4", "fused"])
@pytest.mark.parametrize("name", sorted(PYRAMIDS))
def test_pyramid_head_on_every_adapter(name, fuse_strides):
    adapter = PYRAMIDS[name]()
    shapes = output_shapes(adapter, "test")
    head = PyramidPoseHead([s.channels for s in shapes], [s.stride for s in shapes], K, fuse_strides, channels=16)
    unused = run(adapter, head, (64, 64))
    assert not [n for n in unused if n.startswith(("laterals", "fuse", "final_layer"))]


def test_pyramid_head_on_a_stride2_map_gives_stride2_heatmaps():
    from densevit.backbones.hybrid_vit import HybridViT

    backbone = HybridViT(img_size=64, embed_dim=64, depth=2, num_heads=2, stem_widths=(8, 16, 32, 64),
                         stem_out_indices=(0, 1, 2))
    shapes = output_shapes(backbone, "test")
    assert [s.stride for s in shapes] == [2, 4, 8, 16]
    head = PyramidPoseHead([s.channels for s in shapes], [s.stride for s in shapes], K, (2, 4, 8, 16), channels=16)
    assert run(backbone, head, (64, 48), stride=2) == []


def test_pyramid_head_needs_its_fused_maps():
    with pytest.raises(ValueError, match=r"no input map at strides \[4\]"):
        PyramidPoseHead([32, 32], [8, 16], K)
    with pytest.raises(ValueError, match=r"finest of fuse_strides \(8, 16\).*must be 2 or 4"):
        PyramidPoseHead([32, 32], [8, 16], K, fuse_strides=(8, 16))


def test_joints_mse_loss_is_the_reference_sum_over_joints():
    g = torch.Generator().manual_seed(0)
    pred, target = torch.rand(3, 4, 8, 6, generator=g), torch.rand(3, 4, 8, 6, generator=g)
    weight = torch.tensor([[1.0, 0, 1, 1], [0, 0, 1, 0], [1, 1, 1, 1]])
    # JointsMSELoss(use_target_weight=True): per joint, MSELoss (mean) of the weighted maps; summed, / K.
    expect = sum(torch.nn.functional.mse_loss(pred[:, k] * weight[:, k, None, None],
                                              target[:, k] * weight[:, k, None, None]) for k in range(4)) / 4
    torch.testing.assert_close(joints_mse_loss(pred, target, weight), expect)

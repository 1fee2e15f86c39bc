"""Standard FPN neck and the timm multi-scale backbone wrapper."""

from __future__ import annotations

import pytest
import timm
import torch
import torch.nn.functional as F
from torch import nn

from densevit.adapters.fpn import FPN
from densevit.backbones.interface import ShapeSpec
from densevit.backbones.timm_backbone import TimmBackbone
from densevit.checkpoint import load_weights


class FixedMaps(nn.Module):
    """A backbone that hands out given maps (adapter interface)."""

    def __init__(self, maps: list[torch.Tensor], strides: tuple[int, ...]) -> None:
        super().__init__()
        self.maps = maps
        self.output_shapes = tuple(ShapeSpec(m.shape[1], s) for m, s in zip(maps, strides, strict=True))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.maps


def test_top_down_sums_upsampled_coarser_levels():
    maps = [torch.randn(1, 4, 7, 9), torch.randn(1, 4, 4, 5), torch.randn(1, 4, 2, 3)]
    fpn = FPN(FixedMaps(maps, (8, 16, 32)), out_channels=4)
    with torch.no_grad():  # identity laterals and output convs expose the top-down pathway
        for conv in fpn.lateral_convs:
            conv.weight.copy_(torch.eye(4).view(4, 4, 1, 1))
            conv.bias.zero_()
        for conv in fpn.output_convs:
            conv.weight.zero_()
            conv.weight[:, :, 1, 1] = torch.eye(4)
            conv.bias.zero_()
        p3, p4, p5, p6 = fpn(torch.zeros(1, 3, 56, 72))
    up = lambda t, ref: F.interpolate(t, size=ref.shape[-2:], mode="nearest")  # noqa: E731
    torch.testing.assert_close(p5, maps[2])
    torch.testing.assert_close(p4, maps[1] + up(maps[2], maps[1]))
    torch.testing.assert_close(p3, maps[0] + up(maps[1] + up(maps[2], maps[1]), maps[0]))
    torch.testing.assert_close(p6, p5[..., ::2, ::2])
    assert fpn.output_shapes == tuple(ShapeSpec(4, s) for s in (8, 16, 32, 64))


def test_fpn_over_resnet18_forward_backward():
    backbone = TimmBackbone("resnet18")
    assert backbone.output_shapes == tuple(ShapeSpec(c, s) for c, s in ((64, 4), (128, 8), (256, 16), (512, 32)))
    fpn = FPN(backbone, out_channels=32)
    outs = fpn(torch.randn(2, 3, 70, 90))
    assert [tuple(o.shape) for o in outs] == [(2, 32, 18, 23), (2, 32, 9, 12), (2, 32, 5, 6), (2, 32, 3, 3),
                                              (2, 32, 2, 2)]
    sum(o.mean() for o in outs).backward()
    assert backbone.body.layer4[1].conv2.weight.grad is not None


def test_fpn_without_extra_pool_over_convnext():
    backbone = TimmBackbone("convnext_atto", out_indices=(0, 1, 2, 3))
    fpn = FPN(backbone, out_channels=16, extra_pool=False)
    assert [s.stride for s in fpn.output_shapes] == [4, 8, 16, 32]
    assert [o.shape[-1] for o in fpn(torch.randn(1, 3, 64, 64))] == [16, 8, 4, 2]


def test_channels_last_models_come_out_nchw():
    backbone = TimmBackbone("swin_tiny_patch4_window7_224", out_indices=(0, 1, 2, 3), embed_dim=16,
                            depths=(1, 1, 1, 1), num_heads=(1, 1, 1, 1), window_size=2, img_size=64)
    outs = backbone(torch.randn(1, 3, 64, 64))
    assert [tuple(o.shape) for o in outs] == [(1, 16, 16, 16), (1, 32, 8, 8), (1, 64, 4, 4), (1, 128, 2, 2)]


@pytest.mark.parametrize(("name", "out_indices"), [("resnet18", (1, 2, 3, 4)), ("convnext_atto", (0, 1, 2, 3))])
def test_loads_local_classification_checkpoint(tmp_path, name, out_indices):
    torch.manual_seed(0)
    reference = timm.create_model(name, pretrained=False)
    torch.save(reference.state_dict(), tmp_path / "weights.pth")
    backbone = TimmBackbone(name, out_indices=out_indices).eval()
    load_weights(backbone, tmp_path / "weights.pth")
    reference.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = reference.forward_intermediates(x, indices=len(out_indices), intermediates_only=True)
        outs = backbone(x)
    for out, ref in zip(outs, expected, strict=True):
        torch.testing.assert_close(out, ref)


def test_wrong_checkpoint_and_out_indices_raise(tmp_path):
    torch.save({"blocks.0.weight": torch.zeros(1)}, tmp_path / "vit.pth")
    with pytest.raises(ValueError, match="none of its 1 keys"):
        load_weights(TimmBackbone("resnet18"), tmp_path / "vit.pth")
    partial_state = dict(list(timm.create_model("resnet18").state_dict().items())[:10])
    torch.save(partial_state, tmp_path / "partial.pth")
    with pytest.raises(ValueError, match="are not in the checkpoint"):
        load_weights(TimmBackbone("resnet18"), tmp_path / "partial.pth")
    with pytest.raises(ValueError, match="fewer feature levels"):
        TimmBackbone("convnext_atto")


def test_rejects_backbone_without_interface():
    with pytest.raises(TypeError, match="output_shapes"):
        FPN(nn.Conv2d(3, 8, 1))

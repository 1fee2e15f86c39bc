"""ViTDet simple feature pyramid: levels, detectron2 names, parameter counts, backbone checks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from densevit.adapters.simple_pyramid import SimpleFeaturePyramid
from densevit.backbones.hybrid_vit import HybridViT
from densevit.backbones.interface import ShapeSpec
from densevit.backbones.vit import VITDET_SIZES, ViT


def tiny_vit(**kwargs) -> ViT:
    return ViT(**{"embed_dim": 64, "depth": 2, "num_heads": 2, "img_size": 64, **kwargs})


def test_levels_shapes_and_backward():
    sfp = SimpleFeaturePyramid(tiny_vit(window_size=2, window_block_indexes=(0,), use_rel_pos=True), 32)
    assert sfp.output_shapes == tuple(ShapeSpec(32, s) for s in (4, 8, 16, 32, 64))
    x = torch.randn(2, 3, 64, 96)
    outs = sfp(x)
    assert [tuple(o.shape) for o in outs] == [(2, 32, 16, 24), (2, 32, 8, 12), (2, 32, 4, 6), (2, 32, 2, 3),
                                              (2, 32, 1, 2)]
    torch.testing.assert_close(outs[4], outs[3][..., ::2, ::2], rtol=0, atol=0)  # p6 = stride-2 subsampling
    sum(o.mean() for o in outs).backward()
    assert all(p.grad is not None for p in sfp.parameters())


TINY_HYBRID = dict(embed_dim=64, depth=2, num_heads=2, img_size=64, stem_widths=(8, 16, 32, 64))


def test_stem_maps_join_their_levels_through_laterals():
    torch.manual_seed(0)
    sfp = SimpleFeaturePyramid(HybridViT(**TINY_HYBRID, stem_out_indices=(1, 2)), 32, top_block=False).eval()
    assert sfp.output_shapes == tuple(ShapeSpec(32, s) for s in (4, 8, 16, 32))
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        f4, f8, feature = sfp.backbone(x)
        p2, p3, p4, p5 = sfp(x)
        torch.testing.assert_close(p2, sfp.simfp_2(feature) + sfp.stem_lateral_4(f4))
        torch.testing.assert_close(p3, sfp.simfp_3(feature) + sfp.stem_lateral_8(f8))
        torch.testing.assert_close(p4, sfp.simfp_4(feature))  # no stem map at strides 16 and 32
        torch.testing.assert_close(p5, sfp.simfp_5(feature))
    assert not any("stem_lateral" in k for k in SimpleFeaturePyramid(tiny_vit(), 32).state_dict())


def test_stride32_level_is_pooled_stride16_map():
    sfp = SimpleFeaturePyramid(tiny_vit(), 32, scale_factors=(1.0, 0.5), top_block=False).eval()
    assert [s.stride for s in sfp.output_shapes] == [16, 32]
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        (feature,) = sfp.backbone(x)
        p4, p5 = sfp(x)
        # Same 1x1 + 3x3 ConvNorm pattern on the stride-16 map and on its 2x2 max-pool.
        torch.testing.assert_close(p4, sfp.simfp_4[1](sfp.simfp_4[0](feature)))
        torch.testing.assert_close(p5, sfp.simfp_5[2](sfp.simfp_5[1](F.max_pool2d(feature, 2))))


def test_module_names_match_detectron2():
    sfp = SimpleFeaturePyramid(tiny_vit(), 32)
    pyramid = {k.rsplit(".", 1)[0] for k in sfp.state_dict() if k.startswith("simfp_")}
    assert pyramid == {
        "simfp_2.0", "simfp_2.1", "simfp_2.3", "simfp_2.4", "simfp_2.4.norm", "simfp_2.5", "simfp_2.5.norm",
        "simfp_3.0", "simfp_3.1", "simfp_3.1.norm", "simfp_3.2", "simfp_3.2.norm",
        "simfp_4.0", "simfp_4.0.norm", "simfp_4.1", "simfp_4.1.norm",
        "simfp_5.1", "simfp_5.1.norm", "simfp_5.2", "simfp_5.2.norm",
    }
    assert "simfp_2.4.bias" not in sfp.state_dict()  # convs without bias


def test_vitdet_b_parameter_counts():
    with torch.device("meta"):
        vit = ViT(**VITDET_SIZES["base"])
        sfp = SimpleFeaturePyramid(vit)
    backbone = sum(p.numel() for p in vit.parameters())
    pyramid = sum(p.numel() for p in sfp.parameters()) - backbone
    assert round(backbone / 1e6, 1) == 85.9 and round(pyramid / 1e6, 2) == 5.56  # as the ViTDet paper counts them


@pytest.mark.parametrize(
    ("backbone", "message"),
    [
        (tiny_vit(out_indices=(0, 1)), "only stride-16 map"),
        (tiny_vit(patch_size=8), r"strides \(8,\)"),
        (HybridViT(**TINY_HYBRID, stem_out_indices=(0,)), r"strides \[2\] have no pyramid level"),
    ],
)
def test_rejects_unsuitable_backbones(backbone, message):
    with pytest.raises(ValueError, match=message):
        SimpleFeaturePyramid(backbone)


def test_rejects_backbone_without_declared_outputs():
    with pytest.raises(TypeError, match="Conv2d does not declare its outputs"):
        SimpleFeaturePyramid(torch.nn.Conv2d(3, 8, 1))


def test_rejects_unknown_scale_factor():
    with pytest.raises(ValueError, match=r"0\.25"):
        SimpleFeaturePyramid(tiny_vit(), scale_factors=(1.0, 0.25))

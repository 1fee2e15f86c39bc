"""ViT with a convolutional stem: stage maps and strides, the blocks are ViT's, timm weights fill the blocks."""

from __future__ import annotations

import pytest
import timm
import torch
from torch import nn

from densevit.backbones.hybrid_vit import ConvStem, HybridViT
from densevit.backbones.interface import ShapeSpec
from densevit.backbones.vit import VIT_SIZES, ViT
from densevit.checkpoint import load_weights
from densevit.engine.optim import param_groups

TINY = dict(img_size=64, embed_dim=64, depth=2, num_heads=2, stem_widths=(8, 16, 32, 64))


def test_stem_stages_halve_the_padded_image_and_project_to_tokens():
    torch.manual_seed(0)
    stem = ConvStem((8, 16, 32, 64), embed_dim=48).eval()
    x = torch.randn(2, 3, 60, 90)  # padded bottom/right to 64x96
    maps = stem.stage_maps(x)
    assert [tuple(m.shape[1:]) for m in maps] == [(8, 32, 48), (16, 16, 24), (32, 8, 12), (64, 4, 6)]
    padded = torch.nn.functional.pad(x, (0, 6, 0, 4))
    expected = padded
    for stage in stem.stages:
        conv, norm = stage[0], stage[1]
        expected = torch.relu(norm(conv(expected)))
    torch.testing.assert_close(maps[-1], expected)
    tokens = stem(x)
    torch.testing.assert_close(tokens, stem.proj(expected).permute(0, 2, 3, 1))
    assert stem.patch_size == 16


def test_outputs_are_the_chosen_stem_maps_then_the_token_maps():
    torch.manual_seed(0)
    model = HybridViT(**TINY, out_indices=(0, 1), stem_out_indices=(1, 2))
    assert model.output_shapes == (ShapeSpec(16, 4), ShapeSpec(32, 8), ShapeSpec(64, 16), ShapeSpec(64, 16))
    x = torch.randn(2, 3, 64, 96)
    f4, f8, t0, t1 = model(x)
    assert f4.shape == (2, 16, 16, 24) and f8.shape == (2, 32, 8, 12)
    assert t0.shape == t1.shape == (2, 64, 4, 6)
    # the token maps are the ViT blocks run on the projected stem output plus the positions
    maps = model.patch_embed.stage_maps(x)
    torch.testing.assert_close(f8, maps[2])
    tokens = model.blocks[0](model.add_positions(model.patch_embed.tokens(maps[-1])))
    torch.testing.assert_close(t0, tokens.permute(0, 3, 1, 2))
    torch.testing.assert_close(t1, model.blocks[1](tokens).permute(0, 3, 1, 2))
    sum(o.mean() for o in (f4, f8, t0, t1)).backward()
    assert all(p.grad is not None for p in model.parameters())


def test_without_stem_outputs_it_is_a_vit_with_another_embedding():
    model = HybridViT(**TINY)
    assert model.output_shapes == (ShapeSpec(64, 16),)
    (out,) = model(torch.randn(1, 3, 32, 48))
    assert out.shape == (1, 64, 2, 3)
    assert isinstance(model, ViT) and model.layer_id("patch_embed.stages.0.0.weight") == 0


def test_the_stem_is_layer_0_and_its_norms_take_no_weight_decay():
    model = HybridViT(**TINY)
    by_id = {id(p): (g["lr_mult"], g["weight_decay"]) for g in param_groups(model, 1.0, 0.05, layer_decay=0.5)
             for p in g["params"]}
    conv, norm = model.patch_embed.stages[0][0], model.patch_embed.stages[0][1]
    assert isinstance(norm, nn.BatchNorm2d)
    assert by_id[id(norm.weight)] == by_id[id(norm.bias)] == (0.5**3, 0.0)  # depth 2: layer 0 gets 0.5^3
    assert by_id[id(conv.weight)] == (0.5**3, 0.05)


def test_a_timm_file_fills_the_blocks_and_positions(tmp_path):
    torch.manual_seed(0)
    reference = timm.create_model("vit_tiny_patch16_224", pretrained=False)
    path = tmp_path / "timm.pth"
    torch.save(reference.state_dict(), path)
    model = HybridViT(**VIT_SIZES["tiny"])
    load_weights(model, path)
    own, ref = model.state_dict(), reference.state_dict()
    torch.testing.assert_close(own["blocks.3.attn.qkv.weight"], ref["blocks.3.attn.qkv.weight"], rtol=0, atol=0)
    torch.testing.assert_close(own["pos_embed"], ref["pos_embed"], rtol=0, atol=0)
    assert own["patch_embed.proj.weight"].shape == (192, 192, 1, 1)  # the stem's own, not timm's 16x16 kernel


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(stem_widths=(8, 16, 32)), "stride 8, but patch_size is 16"),
        (dict(stem_out_indices=(2, 1)), "stem_out_indices"),
        (dict(stem_out_indices=(4,)), "stem_out_indices"),
    ],
)
def test_bad_arguments_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        HybridViT(**{**TINY, **kwargs})


def test_unknown_arguments_list_the_accepted_ones():
    with pytest.raises(TypeError, match=r"unknown argument\(s\) 'embed_dimm'; accepted: stem_widths, .*embed_dim"):
        HybridViT(embed_dimm=64)

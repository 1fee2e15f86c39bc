"""Parameter groups: ViTDet's layer-wise lr decay and no weight decay on norms and position embeddings."""

from __future__ import annotations

import pytest
from tiny_pyramids import tiny_vit
from torch import nn

from densevit.adapters.simple_pyramid import SimpleFeaturePyramid
from densevit.backbones.swin import SwinTransformer
from densevit.engine.optim import param_groups


def settings(model: nn.Module, **kwargs) -> dict[str, tuple[float, float]]:
    """Parameter name -> (lr, weight decay) of the group holding it."""
    by_id = {id(p): (g["lr"], g["weight_decay"]) for g in param_groups(model, **kwargs) for p in g["params"]}
    return {name: by_id[id(p)] for name, p in model.named_parameters()}


def test_layer_decay_follows_vitdet_rule():
    model = SimpleFeaturePyramid(tiny_vit(depth=3), 16, top_block=False)
    got = settings(model, lr=1.0, weight_decay=0.1, layer_decay=0.5)
    # L = 3 blocks: embedding 0.5^4, block i 0.5^(3 - i), everything outside the ViT 0.5^0
    assert got["backbone.patch_embed.proj.weight"][0] == pytest.approx(0.5**4)
    assert got["backbone.pos_embed"][0] == pytest.approx(0.5**4)
    for i in range(3):
        assert got[f"backbone.blocks.{i}.mlp.fc1.weight"][0] == pytest.approx(0.5 ** (3 - i))
    assert got["simfp_2.0.weight"][0] == pytest.approx(1.0)
    assert got["simfp_5.1.weight"][0] == pytest.approx(1.0)


def test_no_weight_decay_on_norms_and_position_embedding():
    got = settings(SimpleFeaturePyramid(tiny_vit(), 16, top_block=False), lr=1.0, weight_decay=0.1)
    assert got["backbone.pos_embed"][1] == 0.0
    assert got["backbone.blocks.0.norm1.weight"][1] == 0.0 and got["backbone.blocks.0.norm1.bias"][1] == 0.0
    assert got["simfp_2.1.weight"][1] == 0.0  # the LayerNorm between the two deconvolutions
    assert got["simfp_2.4.norm.weight"][1] == 0.0 and got["simfp_2.4.weight"][1] == 0.1  # ConvNorm: norm vs conv
    assert got["backbone.blocks.0.attn.qkv.weight"][1] == 0.1 and got["backbone.blocks.0.attn.qkv.bias"][1] == 0.1
    assert {lr for lr, _ in got.values()} == {1.0}


def test_layer_decay_without_a_vit_is_an_error():
    swin = SwinTransformer(embed_dim=16, depths=(1, 1, 1, 1), num_heads=(1, 2, 4, 8))
    with pytest.raises(ValueError, match=r"layer_decay=0.9 needs a plain ViT.*SwinTransformer"):
        param_groups(swin, lr=1.0, weight_decay=0.1, layer_decay=0.9)
    assert settings(swin, lr=1.0, weight_decay=0.1)  # without layer decay it is fine

"""The backbone interface: declared output shapes and the checks consumers run on them."""

from __future__ import annotations

import pytest
from tiny_pyramids import tiny_pyramids, tiny_vit
from torch import nn

from densevit.backbones.interface import ShapeSpec, levels_at, output_shapes


def test_every_backbone_and_adapter_declares_what_it_returns():
    import torch

    for name, make in tiny_pyramids(16).items():
        module = make()
        shapes = output_shapes(module, "test")
        outs = module(torch.randn(1, 3, 64, 64))
        assert [o.shape[1] for o in outs] == [s.channels for s in shapes], name
        assert [64 // o.shape[-1] for o in outs] == [s.stride for s in shapes], name


def test_undeclared_outputs_name_the_consumer_and_the_module():
    with pytest.raises(TypeError, match=r"UperHead: Linear does not declare its outputs"):
        output_shapes(nn.Linear(2, 2), "UperHead")


def test_levels_at_finds_strides_and_lists_the_available_ones():
    shapes = (ShapeSpec(8, 4), ShapeSpec(16, 8), ShapeSpec(32, 16))
    assert levels_at(shapes, (16, 4), "head") == [2, 0]
    with pytest.raises(ValueError, match=r"head: no level with stride \[32\]; .* strides \(4, 8, 16\)"):
        levels_at(shapes, (32,), "head")
    assert levels_at(output_shapes(tiny_vit(out_indices=(0, 1)), "x"), (16,), "x") == [0]

"""Swin and STViT-R-Swin backbones: timm parity, shapes at odd sizes, released checkpoint layouts, exact FLOPs."""

from __future__ import annotations

import logging
import math

import pytest
import torch
from timm.models.swin_transformer import SwinTransformerBlock as TimmSwinBlock

from densevit.backbones.interface import ShapeSpec
from densevit.backbones.swin import (
    SWIN_SIZES,
    PatchMerging,
    SwinBlock,
    SwinTransformer,
    shifted_window_mask,
)
from densevit.backbones.swin_stvit_r import STVIT_R_SWIN_SIZES, SemanticBlock, SwinSTViTR
from densevit.benchmarking import flop_counter
from densevit.checkpoint import convert_swin_checkpoint, load_weights
from densevit.ops.dumbbell import DumbbellConfig, apply_role

TINY = dict(embed_dim=16, num_heads=(1, 2, 4, 8), window_size=7)
# The released stage-3 layout needs 18 blocks (units start at blocks 0, 6 and 12).
TINY_STVIT = dict(TINY, depths=(1, 1, 18, 1))


# --- plain Swin pieces against timm and explicit computations ----------------------------------------------------


@pytest.mark.parametrize("shift", [0, 3])
def test_swin_block_matches_timm(shift):
    torch.manual_seed(0)
    ours = SwinBlock(32, 2, window_size=7, shift_size=shift)
    theirs = TimmSwinBlock(32, (14, 21), 2, window_size=7, shift_size=shift)
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(2, 14, 21, 32)
    mask = shifted_window_mask((14, 21), 7, shift, x.device) if shift else None
    torch.testing.assert_close(ours(x, mask), theirs(x), rtol=1e-5, atol=1e-5)


def test_shifted_window_mask_matches_timm_on_a_padded_grid():
    theirs = TimmSwinBlock(8, (14, 21), 1, window_size=7, shift_size=3)
    torch.testing.assert_close(shifted_window_mask((14, 21), 7, 3, torch.device("cpu")), theirs.attn_mask)


def test_patch_merging_concatenates_two_by_two_neighbours_in_reference_order():
    merge = PatchMerging(4)
    x = torch.randn(1, 3, 5, 4)
    padded = torch.nn.functional.pad(x, (0, 0, 0, 1, 0, 1))
    i, j = 1, 2  # output token (1, 2) reads rows 2-3, cols 4-5
    expected = torch.cat([padded[0, 2 * i, 2 * j], padded[0, 2 * i + 1, 2 * j], padded[0, 2 * i, 2 * j + 1],
                          padded[0, 2 * i + 1, 2 * j + 1]])
    out = merge(x)
    assert out.shape == (1, 2, 3, 8)
    torch.testing.assert_close(out[0, i, j], merge.reduction(merge.norm(expected)))


@pytest.mark.parametrize("cls", [SwinTransformer, SwinSTViTR])
@pytest.mark.parametrize(("h", "w"), [(224, 224), (97, 131), (33, 50)])
def test_backbones_keep_strides_and_channels_at_odd_sizes(cls, h, w):
    torch.manual_seed(0)
    model = cls(**TINY_STVIT)
    assert model.output_shapes == tuple(ShapeSpec(c, s) for c, s in ((16, 4), (32, 8), (64, 16), (128, 32)))
    outs = model(torch.randn(1, 3, h, w))
    sizes = [(math.ceil(h / 4), math.ceil(w / 4))]
    for _ in range(3):
        sizes.append((math.ceil(sizes[-1][0] / 2), math.ceil(sizes[-1][1] / 2)))
    channels = [spec.channels for spec in model.output_shapes]
    assert [tuple(o.shape[1:]) for o in outs] == [(c, *s) for c, s in zip(channels, sizes, strict=True)]


def test_stvit_r_swin_forward_backward_reaches_every_parameter():
    torch.manual_seed(0)
    model = SwinSTViTR(**TINY_STVIT, out_indices=(1, 2, 3), drop_path_rate=0.0)  # no randomly skipped block
    outs = model(torch.randn(2, 3, 75, 101))
    sum(o.square().mean() for o in outs).backward()
    assert [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum()] == []


def test_sizes_are_the_released_ones():
    assert STVIT_R_SWIN_SIZES["small"] == SWIN_SIZES["small"]
    model = SwinSTViTR(**{**STVIT_R_SWIN_SIZES["base"], "depths": (1, 1, 6, 1)})
    assert [s.channels for s in model.output_shapes] == [128, 256, 512, 1024]
    with pytest.raises(ValueError, match="roles"):
        SwinSTViTR(**TINY, depths=(1, 1, 4, 1))  # the released unit needs a multiple of 6 blocks


# --- released checkpoint layouts -----------------------------------------------------------------------------------


def _block_keys(prefix: str, c: int, heads: int, window: int, released_semantic: bool) -> dict[str, tuple]:
    keys = {f"{prefix}norm1.weight": (c,), f"{prefix}norm1.bias": (c,), f"{prefix}norm2.weight": (c,),
            f"{prefix}norm2.bias": (c,), f"{prefix}attn.proj.weight": (c, c), f"{prefix}attn.proj.bias": (c,),
            f"{prefix}mlp.fc1.weight": (4 * c, c), f"{prefix}mlp.fc1.bias": (4 * c,),
            f"{prefix}mlp.fc2.weight": (c, 4 * c), f"{prefix}mlp.fc2.bias": (c,)}
    if released_semantic:
        keys.update({f"{prefix}layer_scale_1": (c,), f"{prefix}layer_scale_2": (c,), f"{prefix}attn.q.weight": (c, c),
                     f"{prefix}attn.q.bias": (c,), f"{prefix}attn.kv.weight": (2 * c, c),
                     f"{prefix}attn.kv.bias": (2 * c,)})
    else:
        keys.update({f"{prefix}attn.qkv.weight": (3 * c, c), f"{prefix}attn.qkv.bias": (3 * c,),
                     f"{prefix}attn.relative_position_bias_table": ((2 * window - 1) ** 2, heads),
                     f"{prefix}attn.relative_position_index": (window**2, window**2)})
    return keys


def released_layout(embed_dim, depths, num_heads, window, stvit_r: bool) -> dict[str, torch.Tensor]:
    """An mmdet checkpoint's state dict as mmdetection writes it (``backbone.`` keys, plus neck / head entries)."""
    shapes: dict[str, tuple] = {}
    if stvit_r:
        for i, (cin, cout) in enumerate([(3, embed_dim // 2), (embed_dim // 2, embed_dim)]):
            p = f"patch_embed.proj.{2 * i}."
            shapes[p + "c.weight"] = (cout, cin, 3, 3)
            for name in ("weight", "bias", "running_mean", "running_var"):
                shapes[p + f"bn.{name}"] = (cout,)
            shapes[p + "bn.num_batches_tracked"] = ()
    else:
        shapes.update({"patch_embed.proj.weight": (embed_dim, 3, 4, 4), "patch_embed.proj.bias": (embed_dim,),
                       "patch_embed.norm.weight": (embed_dim,), "patch_embed.norm.bias": (embed_dim,)})
    for stage, depth in enumerate(depths):
        c = embed_dim * 2**stage
        for block in range(depth):
            semantic = stvit_r and stage == 2 and block % 6 != 0
            shapes.update(_block_keys(f"layers.{stage}.blocks.{block}.", c, num_heads[stage], window, semantic))
        if stage < len(depths) - 1:
            shapes.update({f"layers.{stage}.downsample.reduction.weight": (2 * c, 4 * c),
                           f"layers.{stage}.downsample.norm.weight": (4 * c,),
                           f"layers.{stage}.downsample.norm.bias": (4 * c,)})
        shapes.update({f"norm{stage}.weight": (c,), f"norm{stage}.bias": (c,)})
    state = {"backbone." + k: torch.randn(s) if s else torch.tensor(7) for k, s in shapes.items()}
    state["neck.lateral_convs.0.conv.weight"] = torch.randn(4, embed_dim, 1, 1)  # mmdet neck / head entries
    state["roi_head.bbox_head.0.fc_cls.weight"] = torch.randn(81, 16)
    return state


@pytest.mark.parametrize(("cls", "stvit_r"), [(SwinTransformer, False), (SwinSTViTR, True)])
def test_released_checkpoint_layout_loads_strictly(cls, stvit_r, tmp_path, caplog):
    depths = TINY_STVIT["depths"]
    state = released_layout(16, depths, TINY["num_heads"], 7, stvit_r)
    model = cls(**TINY_STVIT)
    model.load_state_dict(convert_swin_checkpoint(state), strict=True)  # no missing, no unexpected keys
    path = tmp_path / "release.pth"
    torch.save({"state_dict": state, "meta": {"epoch": 36}}, path)
    with caplog.at_level(logging.WARNING):
        loaded = cls(**TINY_STVIT)
        load_weights(loaded, path)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    key = "layers.2.blocks.1.attn.kv.weight" if stvit_r else "layers.2.blocks.1.attn.qkv.weight"
    torch.testing.assert_close(loaded.state_dict()[key], state["backbone." + key])


# --- FLOPs: keys and values projected once per token -------------------------------------------------------------


def test_recovery_flops_project_keys_once_per_semantic_token():
    """Counted FLOPs of one recovery block equal the per-token formula (released code: 81x the kv work)."""
    torch.manual_seed(0)
    c, h, w = 32, 10, 17
    block = SemanticBlock(c, 2)
    cfg = DumbbellConfig()
    x = torch.randn(1, h, w, c)
    s = torch.randn(1, 6, 9, c)  # 2 x 3 windows of 3 x 3 semantic tokens
    with flop_counter() as counter:
        apply_role("recover", block, x, s, cfg)
    windows, queries, keys = 6, 49, 27 * 27
    macs = (h * w * c * c  # q, real tokens
            + (6 * 9 + 1) * c * 2 * c  # kv: every semantic token once, plus the padding token
            + 2 * windows * queries * keys * c  # q k^T and attn v
            + windows * queries * c * c  # output projection (padded windows)
            + 2 * h * w * c * 4 * c)  # MLP
    assert counter.get_total_flops() == 2 * macs

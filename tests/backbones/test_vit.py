"""Plain ViT backbone: tensor maths against explicit computations, timm parity, sizes, checkpointing."""

from __future__ import annotations

import math

import numpy as np
import pytest
import timm
import torch
import torch.nn.functional as F
from timm.layers import resample_abs_pos_embed
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from densevit.backbones.interface import ShapeSpec
from densevit.backbones.vit import VIT_SIZES, VITDET_GLOBAL_BLOCKS, VITDET_SIZES, Attention, Block, ViT
from densevit.backbones.vit_utils import (
    decomposed_rel_pos_bias,
    get_rel_pos,
    resize_abs_pos,
    window_partition,
    window_unpartition,
)
from densevit.checkpoint import load_weights

TINY = dict(embed_dim=64, depth=2, num_heads=2)


def tiny_vit(**kwargs) -> ViT:
    return ViT(**{**TINY, "img_size": 64, **kwargs})


def set_fused(model: nn.Module, fused: bool) -> None:
    for m in model.modules():
        if isinstance(m, Attention):
            m.fused_attn = fused


def randomise_rel_pos(model: nn.Module) -> None:
    """Rel-pos tables are zero at init, which would hide errors in their use."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "rel_pos_" in name:
                p.normal_(0, 0.5)


# --- vit_utils -----------------------------------------------------------------------------------------------


def test_window_partition_round_trip_with_padding():
    x = torch.randn(2, 5, 7, 3)
    windows, pad_hw = window_partition(x, 4)
    assert pad_hw == (8, 8)
    assert windows.shape == (2 * 2 * 2, 4, 4, 3)
    # Window (b=0, row 0, col 1) holds x[0, 0:4, 4:7] then one zero column of padding.
    torch.testing.assert_close(windows[1, :, :3], x[0, 0:4, 4:7], rtol=0, atol=0)
    assert windows[1, :, 3].abs().sum() == 0
    # Last window of batch 0 (rows 4..7, cols 4..7): one real row, three padded ones.
    assert windows[3, 1:].abs().sum() == 0
    torch.testing.assert_close(window_unpartition(windows, 4, pad_hw, (5, 7)), x, rtol=0, atol=0)


def test_get_rel_pos_indexes_table_by_offset():
    table = torch.randn(7, 5)  # S = 4
    rel = get_rel_pos(4, 4, table)
    for i in range(4):
        for j in range(4):
            torch.testing.assert_close(rel[i, j], table[i - j + 3], rtol=0, atol=0)


def test_get_rel_pos_resizes_linearly():
    table = torch.randn(9, 3, dtype=torch.float64)  # made for size 5, used at size 3 -> 5 rows
    rel = get_rel_pos(3, 3, table)
    # Independent linear resize with align_corners=False: source coordinate (i + 0.5) * 9 / 5 - 0.5.
    src = np.clip((np.arange(5) + 0.5) * 9 / 5 - 0.5, 0, 8)
    resized = np.stack([np.interp(src, np.arange(9), table[:, c].numpy()) for c in range(3)], axis=1)
    for i in range(3):
        for j in range(3):
            np.testing.assert_allclose(rel[i, j].numpy(), resized[i - j + 2], rtol=1e-10, atol=1e-12)


def test_resize_abs_pos_identity_and_bicubic():
    pos = torch.randn(1, 1 + 14 * 14, 8)
    torch.testing.assert_close(resize_abs_pos(pos, (14, 14)), pos[:, 1:].reshape(1, 14, 14, 8), rtol=0, atol=0)
    expected = resample_abs_pos_embed(pos, [20, 17], num_prefix_tokens=1, interpolation="bicubic", antialias=False)
    torch.testing.assert_close(resize_abs_pos(pos, (20, 17)), expected[:, 1:].reshape(1, 20, 17, 8))


# --- attention -----------------------------------------------------------------------------------------------


def naive_attention(attn: Attention, x: torch.Tensor) -> torch.Tensor:
    """Explicit per-pair logits q.k * scale + q.R_h[i - k] + q.R_w[j - l] for one image [H, W, C]."""
    h, w, c = x.shape
    heads, hd = attn.num_heads, c // attn.num_heads
    qkv = x.reshape(h * w, c) @ attn.qkv.weight.T + attn.qkv.bias  # [N, 3C]: q | k | v, heads contiguous
    out = torch.zeros(h * w, c, dtype=x.dtype)
    for head in range(heads):
        q, k, v = (qkv[:, t * c + head * hd: t * c + (head + 1) * hd] for t in range(3))
        logits = torch.zeros(h * w, h * w, dtype=x.dtype)
        for n in range(h * w):
            i, j = divmod(n, w)
            for m in range(h * w):
                kk, ll = divmod(m, w)
                logits[n, m] = (q[n] @ k[m]) / math.sqrt(hd)
                logits[n, m] += q[n] @ attn.rel_pos_h[i - kk + h - 1] + q[n] @ attn.rel_pos_w[j - ll + w - 1]
        out[:, head * hd:(head + 1) * hd] = logits.softmax(-1) @ v
    return (out @ attn.proj.weight.T + attn.proj.bias).reshape(h, w, c)


@pytest.mark.parametrize("fused", [False, True])
def test_decomposed_rel_pos_attention_matches_naive(fused):
    torch.manual_seed(0)
    attn = Attention(8, num_heads=2, use_rel_pos=True, rel_pos_size=4, fused_attn=fused).double()
    # A 3 x 4 grid with tables sized exactly for it (5 and 7 rows), so no resize is involved.
    attn.rel_pos_h = nn.Parameter(torch.randn(5, 4, dtype=torch.float64))
    attn.rel_pos_w = nn.Parameter(torch.randn(7, 4, dtype=torch.float64))
    x = torch.randn(2, 3, 4, 8, dtype=torch.float64)
    out = attn(x)
    for b in range(2):
        torch.testing.assert_close(out[b], naive_attention(attn, x[b]), rtol=1e-10, atol=1e-10)


def test_fused_path_equals_explicit_path_with_grads():
    torch.manual_seed(0)
    model = tiny_vit(window_size=4, window_block_indexes=(0,), use_rel_pos=True)
    randomise_rel_pos(model)
    x = torch.randn(2, 3, 80, 112)
    results = []
    for fused in (True, False):
        set_fused(model, fused)
        model.zero_grad()
        (out,) = model(x)
        out.square().mean().backward()
        results.append((out.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}))
    torch.testing.assert_close(results[0][0], results[1][0], rtol=1e-5, atol=1e-5)
    for name, grad in results[0][1].items():
        torch.testing.assert_close(grad, results[1][1][name], rtol=1e-4, atol=1e-6, msg=name)
    assert results[0][1]["blocks.1.attn.rel_pos_h"].abs().sum() > 0


class FullSizeWrites(TorchDispatchMode):
    """Keeps every tensor of ``numel`` elements that an operation returns (so no memory is reused meanwhile)."""

    def __init__(self, numel: int) -> None:
        super().__init__()
        self.numel = numel
        self.kept: list[torch.Tensor] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self.kept += [t for t in tree_leaves(out) if isinstance(t, torch.Tensor) and t.numel() == self.numel]
        return out

    def storages(self) -> int:
        return len({t.untyped_storage().data_ptr() for t in self.kept})


def test_masked_relative_position_bias_is_built_in_one_tensor(monkeypatch):
    """The bias of a masked attention (STViT-R's regions) is materialised once: no layout copy, mask added in place."""
    torch.manual_seed(0)
    attn = Attention(8, num_heads=2, use_rel_pos=True, rel_pos_size=5).double()
    randomise_rel_pos(attn)
    q = torch.randn(2, 3, 4 * 5, 8, dtype=torch.float64)  # 3 groups of 4x5 queries
    kv = torch.randn(2, 3, 6 * 7, 16, dtype=torch.float64)  # ... attend to 6x7 keys each
    mask = torch.zeros(3, 1, 1, 42, dtype=torch.float64).masked_fill(torch.rand(3, 1, 1, 42) < 0.3, float("-inf"))
    seen = []
    monkeypatch.setattr("densevit.backbones.vit.grouped_attention", lambda q, kv, heads, bias, fused: seen.append(bias))
    numel = 2 * 3 * 2 * 20 * 42  # [B, G, heads, Lq, Lk]
    with FullSizeWrites(numel) as writes:
        attn._attend(q, kv, (4, 5), (6, 7), mask)
    assert writes.storages() == 1
    heads_q = q.unflatten(-1, (2, 4)).transpose(-3, -2)
    expected = decomposed_rel_pos_bias(heads_q, attn.rel_pos_h, attn.rel_pos_w, (4, 5), (6, 7)) + mask
    torch.testing.assert_close(seen[0], expected, rtol=0, atol=0)


def randomised_block(**kwargs) -> Block:
    """A float64 block whose norms, layer scales and rel-pos tables are not at their identity init."""
    torch.manual_seed(0)
    block = Block(16, 2, layer_scale_init=0.5, **kwargs).double()
    with torch.no_grad():
        for name, p in block.named_parameters():
            if "norm" in name or "ls" in name or "rel_pos" in name:
                p.uniform_(0.5, 1.5)
    return block


@pytest.mark.parametrize("fused", [False, True])
def test_block_forward_equals_its_composed_parts(fused):
    """queries / keys_values / attend / attention_residual / mlp_residual compose to the block's forward."""
    block = randomised_block(use_rel_pos=True, rel_pos_size=4)
    set_fused(block, fused)
    x = torch.randn(2, 3, 5, 16, dtype=torch.float64)
    with torch.no_grad():
        qkv = torch.cat([block.attn.project_q(x), block.attn.project_kv(x)], dim=-1)
        torch.testing.assert_close(qkv, block.attn.qkv(x), rtol=1e-12, atol=1e-12)
        q = block.queries(x).reshape(2, 1, 15, 16)  # one group: the whole grid
        kv = block.keys_values(x).reshape(2, 1, 15, 32)
        out = block.attend(q, kv, (3, 5), (3, 5)).reshape(2, 3, 5, 16)
        composed = block.mlp_residual(block.attention_residual(x, out))
        torch.testing.assert_close(composed, block(x), rtol=1e-12, atol=1e-12)


def test_zero_pad_qkv_pads_the_projections_of_windows():
    """ViT-CoMer's windows: q, k, v zero-padded after the projection, padded keys unmasked (logit 0, value 0)."""
    block = randomised_block(window_size=3, use_rel_pos=True, rel_pos_size=3)
    x = torch.randn(2, 4, 5, 16, dtype=torch.float64)
    with torch.no_grad():
        qkv = F.pad(block.attn.qkv(block.norm1(x)), (0, 0, 0, 1, 0, 2))  # [2, 6, 6, 48]
        out = torch.zeros(2, 6, 6, 16, dtype=torch.float64)
        for i in range(0, 6, 3):
            for j in range(0, 6, 3):
                window = qkv[:, i:i + 3, j:j + 3].reshape(2, 9, 3, 2, 8)
                q, k, v = window.permute(2, 0, 3, 1, 4)  # each [2, heads, 9, 8]
                logits = q @ k.transpose(-1, -2) / math.sqrt(8)
                logits = logits + decomposed_rel_pos_bias(q, block.attn.rel_pos_h, block.attn.rel_pos_w, (3, 3),
                                                          (3, 3))
                out[:, i:i + 3, j:j + 3] = (logits.softmax(-1) @ v).transpose(1, 2).reshape(2, 3, 3, 16)
        y = x + block.ls1(block.attn.proj(out[:, :4, :5]))
        expected = y + block.ls2(block.mlp(block.norm2(y)))
        torch.testing.assert_close(block(x, zero_pad_qkv=True), expected, rtol=1e-12, atol=1e-12)
        assert not torch.allclose(block(x), expected)  # ViTDet pads the tokens instead
        grid = torch.randn(2, 6, 3, 16, dtype=torch.float64)  # a multiple of the window: nothing to pad
        torch.testing.assert_close(block(grid, zero_pad_qkv=True), block(grid), rtol=0, atol=0)


# --- ViT -------------------------------------------------------------------------------------------------------


def test_odd_input_sizes_and_patch_padding():
    torch.manual_seed(0)
    model = tiny_vit(window_size=4, window_block_indexes=(0,), use_rel_pos=True, out_indices=(0, 1)).eval()
    randomise_rel_pos(model)
    # 80 x 112 -> 5 x 7 grid: neither axis is a multiple of the window (padded to 8 x 8 in block 0).
    x = torch.randn(1, 3, 80, 112)
    outs = model(x)
    assert [tuple(o.shape) for o in outs] == [(1, 64, 5, 7)] * 2
    assert model.output_shapes == (ShapeSpec(64, 16),) * 2
    # 70 x 100 is not a multiple of the patch: same result as zero-padding the image bottom/right by hand.
    crop = x[:, :, :70, :100]
    padded = F.pad(crop, (0, 12, 0, 10))
    for a, b in zip(model(crop), model(padded), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_timm_and_mae_checkpoints_match_timm_blocks(tmp_path):
    torch.manual_seed(0)
    reference = timm.create_model("vit_tiny_patch16_224", pretrained=False).eval()
    timm_file, mae_file = tmp_path / "timm.pth", tmp_path / "mae.pth"
    torch.save(reference.state_dict(), timm_file)
    torch.save({"model": reference.state_dict()}, mae_file)

    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        tokens = reference.patch_embed(x) + reference.pos_embed[:, 1:]  # no class token, as in dense models
        hidden = []
        for block in reference.blocks:
            tokens = block(tokens)
            hidden.append(tokens.transpose(1, 2).reshape(1, 192, 14, 14))

    for path, extra in ((timm_file, {}), (mae_file, {"use_rel_pos": True})):
        model = ViT(**VIT_SIZES["tiny"], out_indices=(5, 11), **extra).eval()
        load_weights(model, path)
        own = model.state_dict()
        assert [k for k in own if k not in reference.state_dict() and "rel_pos_" not in k] == []
        for key, value in reference.state_dict().items():
            if key in own:
                torch.testing.assert_close(own[key], value, rtol=0, atol=0)
        with torch.no_grad():
            out5, out11 = model(x)
        torch.testing.assert_close(out5, hidden[5], rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(out11, hidden[11], rtol=1e-4, atol=1e-4)


def test_activation_checkpointing_gives_identical_grads():
    x = torch.randn(2, 3, 48, 64)
    grads = []
    for use_ckpt in (False, True):
        torch.manual_seed(0)
        model = tiny_vit(drop_path_rate=0.3, window_size=2, window_block_indexes=(1,), use_rel_pos=True,
                         use_act_checkpoint=use_ckpt).train()
        torch.manual_seed(1)  # same drop-path draws in both runs
        (out,) = model(x)
        out.square().mean().backward()
        grads.append({n: p.grad for n, p in model.named_parameters()})
    for name, grad in grads[0].items():
        torch.testing.assert_close(grads[1][name], grad, rtol=0, atol=0, msg=name)


def test_blocks_layout_drop_path_and_layer_scale():
    model = tiny_vit(depth=4, drop_path_rate=0.3, window_size=4, window_block_indexes=(0, 2), use_rel_pos=True,
                     layer_scale_init=0.5)
    assert [b.window_size for b in model.blocks] == [4, 0, 4, 0]
    assert model.blocks[0].drop_path.__class__ is nn.Identity
    assert [round(b.drop_path.drop_prob, 6) for b in model.blocks[1:]] == [0.1, 0.2, 0.3]
    # Window blocks: S = window; global blocks: S = img_size / patch = 4.
    assert model.blocks[0].attn.rel_pos_h.shape == (7, 32) and model.blocks[1].attn.rel_pos_w.shape == (7, 32)
    assert torch.all(model.blocks[3].ls2.gamma == 0.5)
    assert model.pos_embed.shape == (1, 17, 64)
    names = set(model.state_dict())
    for sub in ("norm1.weight", "attn.qkv.bias", "attn.proj.weight", "attn.rel_pos_h", "attn.rel_pos_w",
                "ls1.gamma", "norm2.bias", "mlp.fc1.weight", "mlp.fc2.bias", "ls2.gamma"):
        assert f"blocks.1.{sub}" in names
    assert not any("gamma" in n for n in tiny_vit().state_dict())


def test_forward_backward_and_embed():
    model = tiny_vit(window_size=2, window_block_indexes=(0,), use_rel_pos=True)
    x = torch.randn(2, 3, 32, 48)
    grid = model.embed(x)
    assert grid.shape == (2, 2, 3, 64)
    assert model.blocks[0](grid).shape == grid.shape
    (out,) = model(x)
    out.mean().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_optimiser_helpers():
    model = tiny_vit(use_rel_pos=True)
    assert model.no_weight_decay() == {"pos_embed", "blocks.0.attn.rel_pos_h", "blocks.0.attn.rel_pos_w",
                                       "blocks.1.attn.rel_pos_h", "blocks.1.attn.rel_pos_w"}
    assert model.layer_id("pos_embed") == 0 and model.layer_id("patch_embed.proj.weight") == 0
    assert model.layer_id("blocks.1.mlp.fc1.weight") == 2
    assert model.layer_id("simfp_2.0.weight") == 3


def test_weight_init():
    torch.manual_seed(0)
    model = ViT(**{**VIT_SIZES["small"], "depth": 2})
    qkv = model.blocks[0].attn.qkv
    assert abs(qkv.weight.std().item() - 0.02) < 0.002
    assert qkv.bias.abs().sum() == 0
    assert abs(model.pos_embed.std().item() - 0.02) < 0.003


def test_vitdet_sizes_parameter_counts():
    with torch.device("meta"):
        counts = {size: sum(p.numel() for p in ViT(**kwargs).parameters()) for size, kwargs in VITDET_SIZES.items()}
    # the ViTDet paper's Table: 85.9M / 303.4M / 631.1M.
    assert {k: round(v / 1e6, 1) for k, v in counts.items()} == {"base": 85.9, "large": 303.4, "huge": 631.1}
    assert VITDET_SIZES["large"]["window_block_indexes"] == tuple(
        i for i in range(24) if i not in VITDET_GLOBAL_BLOCKS["large"]
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(window_size=4, window_block_indexes=(2,)), "outside"),
        (dict(window_block_indexes=(0,)), "window_size"),
        (dict(out_indices=(1, 0)), "out_indices"),
        (dict(out_indices=(2,)), "out_indices"),
        (dict(img_size=60), "multiple of patch_size"),
    ],
)
def test_bad_arguments_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tiny_vit(**kwargs)

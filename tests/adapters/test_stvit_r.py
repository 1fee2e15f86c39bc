"""STViT-R: semantic-token maths against explicit computations, the released per-window projection, the plain-ViT
adapter (shapes, gradients, pyramid), and the quickstart config learning."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from densevit.adapters.simple_pyramid import SimpleFeaturePyramid
from densevit.adapters.stvit_r import STViTR, middle_dumbbell_roles
from densevit.backbones.interface import ShapeSpec
from densevit.backbones.swin_stvit_r import SemanticBlock
from densevit.backbones.vit import LAYER_NORM, Block, ViT
from densevit.backbones.vit_utils import get_rel_pos
from densevit.config import build, load_config, to_plain
from densevit.heads.rcnn import box_head, box_predictor, mask_head, mask_predictor, rpn_head
from densevit.models.base import Batch
from densevit.ops.dumbbell import DumbbellConfig, _region_mask, apply_role, check_roles, dumbbell_roles
from densevit.ops.semantic_tokens import (
    gather_regions,
    group_windows,
    pad_grid,
    padding_mask,
    pooled_rows_valid,
    region_padding,
    semantic_pool,
    ungroup_windows,
)

# --- ops against explicit computations -------------------------------------------------------------------------


@pytest.mark.parametrize(("h", "w"), [(14, 21), (10, 17), (3, 8)])
def test_semantic_pool_equals_pooling_each_padded_window(h, w):
    x = torch.randn(2, h, w, 5)
    out = semantic_pool(x, 7, 3)
    nh, nw = math.ceil(h / 7), math.ceil(w / 7)
    padded = F.pad(x, (0, 0, 0, nw * 7 - w, 0, nh * 7 - h))
    assert out.shape == (2, nh * 3, nw * 3, 5)
    for a in range(nh):
        for b in range(nw):
            window = padded[:, a * 7 : a * 7 + 7, b * 7 : b * 7 + 7].permute(0, 3, 1, 2)
            expected = F.adaptive_max_pool2d(window, 3).permute(0, 2, 3, 1)
            torch.testing.assert_close(out[:, a * 3 : a * 3 + 3, b * 3 : b * 3 + 3], expected, rtol=0, atol=0)


def test_gather_regions_equals_unfold():
    x = torch.randn(2, 16, 23, 6)
    regions = gather_regions(x, 9, 7)  # [B, nW, 81, D]
    ref = F.unfold(x.permute(0, 3, 1, 2), kernel_size=9, stride=7)  # [B, D * 81, nW]
    ref = ref.view(2, 6, 81, -1).permute(0, 3, 2, 1)
    torch.testing.assert_close(regions, ref, rtol=0, atol=0)


def test_pooled_rows_valid_marks_pooling_bins_with_a_real_row():
    # 9 real rows padded to 14 (two windows of 7), pooled to 3 rows per window: bins start at 0, 2, 4, 7, 9, 11.
    valid = pooled_rows_valid(9, 7, 3, 2, torch.device("cpu"))
    assert valid.tolist() == [True, True, True, True, False, False]


def test_valid_mask_blocks_exactly_the_keys_outside_the_real_grid():
    h, w, win, kernel = 9, 12, 7, 14
    rows, cols = torch.arange(14) < h, torch.arange(14) < w
    mask = padding_mask("valid", (14, 14), (rows, cols), (5, 2), kernel, win)  # [nW, 1, 1, k*k]
    assert mask.shape == (4, 1, 1, kernel * kernel)
    before = 3  # (14 - 7) // 2
    for n in range(4):
        a, b = divmod(n, 2)
        for i in range(kernel):
            for j in range(kernel):
                r, c = a * win - before + i, b * win - before + j
                blocked = not (0 <= r < h and 0 <= c < w)
                assert (mask[n, 0, 0, i * kernel + j] == float("-inf")) == blocked


def test_released_mask_keeps_the_released_slicing():
    rows = cols = torch.ones(14, dtype=torch.bool)
    # Both pads positive: only the bottom-right corner of the grid is masked (inner rows 12-13 x cols 11-13).
    grid_mask = padding_mask("released", (14, 14), (rows, cols), (2, 3), 7, 7)  # kernel = stride: no outer pad
    full = grid_mask[:, 0, 0].view(2, 2, 7, 7).permute(0, 2, 1, 3).reshape(14, 14)
    expected = torch.zeros(14, 14)
    expected[12:, 11:] = -1000.0
    torch.testing.assert_close(full, expected, rtol=0, atol=0)
    # No padding: x[-0:] selects the whole grid, so every key gets -1000 (a uniform shift).
    no_pad = padding_mask("released", (14, 14), (rows, cols), (0, 0), 7, 7)
    assert (no_pad == -1000.0).all()
    assert padding_mask("none", (14, 14), (rows, cols), (0, 0), 7, 7) is None


# --- released computation, written out with a projection per gathered copy -------------------------------------


def _released_attention(block, q_tokens, kv_tokens, mask):
    """q_tokens [N, Lq, C] (normalised), kv_tokens [N, Lk, C] (normalised), mask [N, 1, Lq|1, Lk] or None."""
    n, lq, c = q_tokens.shape
    heads = block.attn.num_heads
    q = block.attn.q(q_tokens).view(n, lq, heads, -1).transpose(1, 2)
    k, v = block.attn.kv(kv_tokens).view(n, -1, 2, heads, c // heads).permute(2, 0, 3, 1, 4)
    attn = (q @ k.transpose(-2, -1)) * (c // heads) ** -0.5
    if mask is not None:
        attn = attn + mask
    out = (attn.softmax(-1) @ v).transpose(1, 2).reshape(n, lq, c)
    return block.attn.proj(out)


def _released_mask(grid, pad_b, pad_r, before, after, kernel, stride, queries):
    mask = torch.zeros(1, *grid, dtype=torch.float64)
    mask[:, -pad_b:, -pad_r:] = -1000  # the released slicing, as written there
    mask = F.pad(mask, (before, after, before, after), value=-1000)
    mask = F.unfold(mask.unsqueeze(1), kernel_size=kernel, stride=stride).view(1, kernel, kernel, -1)
    mask = mask.permute(0, 3, 1, 2).reshape(-1, 1, kernel * kernel)
    return mask.expand(-1, queries, -1).unsqueeze(1)


def released_semantic_block(block, x, s, window, pooled, kernel):
    """The released SemanticAttentionBlock: raw tokens padded, unfolded, then normalised and projected per copy."""
    _, h, w, c = x.shape
    pad_b, pad_r = (-h) % window, (-w) % window
    xp = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))
    hp, wp = xp.shape[1:3]
    nh, nw = hp // window, wp // window
    if s is None:
        windows = xp.view(1, nh, window, nw, window, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, window, window, c)
        shortcut = F.adaptive_max_pool2d(windows.permute(0, 3, 1, 2), pooled).flatten(2).transpose(1, 2)
    else:
        shortcut = s.view(1, nh, pooled, nw, pooled, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, pooled * pooled, c)
    before, after = (kernel - window) // 2, kernel - window - (kernel - window) // 2
    xx = F.pad(xp, (0, 0, before, after, before, after))
    k_windows = F.unfold(xx.permute(0, 3, 1, 2), kernel_size=kernel, stride=window).view(1, c, kernel, kernel, -1)
    k_windows = block.norm1(k_windows.permute(0, 4, 2, 3, 1).reshape(-1, kernel * kernel, c))
    mask = _released_mask((hp, wp), pad_b, pad_r, before, after, kernel, window, pooled * pooled)
    out = shortcut + block.layer_scale_1 * _released_attention(block, block.norm1(shortcut), k_windows, mask)
    out = out.view(1, nh, nw, pooled, pooled, c).permute(0, 1, 3, 2, 4, 5).reshape(1, nh * pooled, nw * pooled, c)
    return out + block.layer_scale_2 * block.mlp(block.norm2(out))


def released_restore_block(block, x, s, window, pooled, kernel):
    """The released RestoreBlock: image-token windows query the unfolded (then projected) semantic tokens."""
    _, h, w, c = x.shape
    pad_b, pad_r = (-h) % window, (-w) % window
    xp = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))
    hp, wp = xp.shape[1:3]
    nh, nw = hp // window, wp // window
    shortcut = xp.view(1, nh, window, nw, window, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, window * window, c)
    before, after = (kernel - pooled) // 2, kernel - pooled - (kernel - pooled) // 2
    mask = _released_mask(tuple(s.shape[1:3]), pad_b, pad_r, before, after, kernel, pooled, window * window)
    ss = F.pad(s, (0, 0, before, after, before, after))
    k_windows = F.unfold(ss.permute(0, 3, 1, 2), kernel_size=kernel, stride=pooled).view(1, c, kernel, kernel, -1)
    k_windows = block.norm1(k_windows.permute(0, 4, 2, 3, 1).reshape(-1, kernel * kernel, c))
    out = shortcut + block.layer_scale_1 * _released_attention(block, block.norm1(shortcut), k_windows, mask)
    out = out.view(1, nh, nw, window, window, c).permute(0, 1, 3, 2, 4, 5).reshape(1, hp, wp, c)[:, :h, :w]
    return out + block.layer_scale_2 * block.mlp(block.norm2(out))


def semantic_block(dim: int = 16, heads: int = 2) -> SemanticBlock:
    torch.manual_seed(0)
    block = SemanticBlock(dim, heads, layer_scale_init=0.7).double()
    with torch.no_grad():  # non-trivial norms and layer scales, so errors in their use show
        for name, p in block.named_parameters():
            if "norm" in name or "layer_scale" in name:
                p.uniform_(0.5, 1.5)
    return block


@pytest.mark.parametrize(("h", "w"), [(14, 21), (10, 17), (14, 9), (5, 5)])
def test_project_then_gather_equals_released_projection_of_every_copy(h, w):
    """init / refine / recover on float64: projecting once per token changes nothing (any padding case)."""
    cfg = DumbbellConfig(window=7, pooled=3, init_kernel=14, refine_kernel=21, recover_kernel=27, pad_mask="released")
    x = torch.randn(1, h, w, 16, dtype=torch.float64)
    init, refine, recover = semantic_block(), semantic_block(), semantic_block()
    with torch.no_grad():
        _, s = apply_role("init", init, x, None, cfg)
        torch.testing.assert_close(s, released_semantic_block(init, x, None, 7, 3, 14), rtol=1e-10, atol=1e-10)
        _, s2 = apply_role("refine", refine, x, s, cfg)
        torch.testing.assert_close(s2, released_semantic_block(refine, x, s, 7, 3, 21), rtol=1e-10, atol=1e-10)
        out, none = apply_role("recover", recover, x, s2, cfg)
        assert none is None
        torch.testing.assert_close(out, released_restore_block(recover, x, s2, 7, 3, 27), rtol=1e-10, atol=1e-10)


def one_gather_roles(block, role, x, s, cfg):
    """init / refine / recover with every region gathered at once (the layout before the per-column strips)."""
    h, w = x.shape[1:3]
    win, p = cfg.window, cfg.pooled
    nh, nw = -(-h // win), -(-w // win)
    fill = block.keys_values(x.new_zeros(x.shape[-1]))
    if role == "recover":
        kernel, stride, keys, queries, q_size = cfg.recover_kernel, p, s, x, (win, win)
        valid = (pooled_rows_valid(h, win, p, nh, x.device), pooled_rows_valid(w, win, p, nw, x.device))
        before, after = region_padding(p, kernel)
        pad, grid = (before, after, before, after), (nh * p, nw * p)
    else:
        kernel = cfg.init_kernel if role == "init" else cfg.refine_kernel
        stride, keys, q_size = win, x, (p, p)
        queries = semantic_pool(x, win, p) if role == "init" else s
        valid = (torch.arange(nh * win) < h, torch.arange(nw * win) < w)
        before, after = region_padding(win, kernel)
        pad, grid = (before, nh * win - h + after, before, nw * win - w + after), (nh * win, nw * win)
    regions = gather_regions(pad_grid(block.keys_values(keys), *pad, value=fill), kernel, stride)
    mask = padding_mask(cfg.pad_mask, grid, valid, (nh * win - h, nw * win - w), kernel, stride)
    q = block.queries(queries)
    q = group_windows(F.pad(q, (0, 0, 0, (-w) % win, 0, (-h) % win)) if role == "recover" else q, q_size)
    out = block.attend(q, regions, q_size, (kernel, kernel), mask)
    out = ungroup_windows(out, q_size, (nh * q_size[0], nw * q_size[1]))[:, : queries.shape[1], : queries.shape[2]]
    return block.mlp_residual(block.attention_residual(queries, out))


@pytest.mark.parametrize(("b", "h", "w"), [(1, 23, 31), (1, 21, 28), (2, 10, 17), (1, 5, 40)])
@pytest.mark.parametrize("pad_mask", ["released", "valid", "none"])
def test_strip_regions_equal_one_gather_of_every_region(b, h, w, pad_mask):
    """Attending window column by window column changes nothing (float64, 1e-12), for any padding and batch."""
    cfg = DumbbellConfig(pad_mask=pad_mask)
    x = torch.randn(b, h, w, 16, dtype=torch.float64)
    init, refine, recover = semantic_block(), semantic_block(), semantic_block()
    with torch.no_grad():
        _, s = apply_role("init", init, x, None, cfg)
        torch.testing.assert_close(s, one_gather_roles(init, "init", x, None, cfg), rtol=0, atol=1e-12)
        _, s2 = apply_role("refine", refine, x, s, cfg)
        torch.testing.assert_close(s2, one_gather_roles(refine, "refine", x, s, cfg), rtol=0, atol=1e-12)
        out = apply_role("recover", recover, x, s2, cfg)[0]
        torch.testing.assert_close(out, one_gather_roles(recover, "recover", x, s2, cfg), rtol=0, atol=1e-12)
        if pad_mask == "released" and b == 1:  # and the released maths, to the same tolerance
            torch.testing.assert_close(s, released_semantic_block(init, x, None, 7, 3, 14), rtol=0, atol=1e-12)
            torch.testing.assert_close(out, released_restore_block(recover, x, s2, 7, 3, 27), rtol=0, atol=1e-12)


@pytest.mark.parametrize(("b", "h", "w"), [(1, 23, 31), (2, 10, 17)])
def test_region_gradients_equal_one_gather_of_every_region(b, h, w):
    """With autograd (regions gathered by index) outputs and input gradients match the one-gather path (1e-12)."""
    cfg = DumbbellConfig(pad_mask="released")
    init, refine, recover = semantic_block(), semantic_block(), semantic_block()
    x = torch.randn(b, h, w, 16, dtype=torch.float64)

    def run(roles):
        xx = x.clone().requires_grad_()
        s = roles(init, "init", xx, None)
        s = roles(refine, "refine", xx, s)
        out = roles(recover, "recover", xx, s)
        out.square().sum().backward()
        return out, xx.grad

    ours = run(lambda block, role, xx, s: apply_role(role, block, xx, s, cfg)[0 if role == "recover" else 1])
    reference = run(lambda block, role, xx, s: one_gather_roles(block, role, xx, s, cfg))
    for a, e in zip(ours, reference, strict=True):
        torch.testing.assert_close(a, e, rtol=0, atol=1e-12)


def test_gather_regions_of_a_strip_is_a_view():
    strip = torch.randn(2, 30, 9, 6)  # one region wide
    regions = gather_regions(strip, 9, 3)
    assert regions.shape == (2, 8, 81, 6) and regions.data_ptr() == strip.data_ptr()
    torch.testing.assert_close(regions[:, 2].reshape(2, 9, 9, 6), strip[:, 6:15], rtol=0, atol=0)


def test_masks_cached_under_inference_mode_serve_training():
    """A padding mask first built inside inference_mode is reused by a later training step (autograd saves it)."""
    torch.manual_seed(0)
    block, cfg = SemanticBlock(16, 2), DumbbellConfig(pad_mask="valid")
    x = torch.randn(1, 11, 19, 16)
    with torch.inference_mode():
        apply_role("init", block, x, None, cfg)
    _, s = apply_role("init", block, x.requires_grad_(), None, cfg)
    s.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_local_and_global_roles_equal_windowed_and_full_attention():
    block = semantic_block()
    cfg = DumbbellConfig()
    s = torch.randn(2, 6, 9, 16, dtype=torch.float64)

    def reference(tokens):  # tokens [N, L, C] -> attention block output
        out = tokens + block.layer_scale_1 * _released_attention(block, block.norm1(tokens), block.norm1(tokens), None)
        return out + block.layer_scale_2 * block.mlp(block.norm2(out))

    with torch.no_grad():
        _, local = apply_role("local", block, torch.zeros(2, 14, 21, 16), s, cfg)
        groups = s.view(2, 2, 3, 3, 3, 16).permute(0, 1, 3, 2, 4, 5).reshape(-1, 9, 16)
        expected = reference(groups).view(2, 2, 3, 3, 3, 16).permute(0, 1, 3, 2, 4, 5).reshape(2, 6, 9, 16)
        torch.testing.assert_close(local, expected, rtol=1e-10, atol=1e-10)
        _, glob = apply_role("global", block, torch.zeros(2, 14, 21, 16), s, cfg)
        torch.testing.assert_close(glob, reference(s.reshape(2, 54, 16)).view(2, 6, 9, 16), rtol=1e-10, atol=1e-10)


# --- reusing pretrained ViT blocks ------------------------------------------------------------------------------


def test_vit_block_in_global_role_is_the_block_itself():
    """A global ViT block (with relative positions) on the semantic grid computes exactly its own forward."""
    torch.manual_seed(0)
    block = Block(32, 4, use_rel_pos=True, rel_pos_size=8).double().eval()
    with torch.no_grad():
        block.attn.rel_pos_h.normal_(0, 0.5)
        block.attn.rel_pos_w.normal_(0, 0.5)
        s = torch.randn(2, 6, 9, 32, dtype=torch.float64)
        _, out = apply_role("global", block, torch.zeros(2, 14, 21, 32), s, DumbbellConfig())
        torch.testing.assert_close(out, block(s), rtol=1e-10, atol=1e-10)


class PairwiseAttend:
    """A ViT block whose ``attend`` is written out pair by pair (MViTv2's decomposed relative positions):
    logit(n, m) = q_n . k_m / sqrt(d) + q_n . R_h[i, i'] + q_n . R_w[j, j'] + mask_m, for query n at (i, j) of
    the ``q_hw`` grid and key m at (i', j') of the ``k_hw`` grid."""

    def __init__(self, block: Block) -> None:
        self.block = block

    def __getattr__(self, name):
        return getattr(self.block, name)

    def attend(self, q, kv, q_hw, k_hw, mask=None):
        attn = self.block.attn
        b, g, lq, c = q.shape
        heads, lk = attn.num_heads, kv.shape[2]
        q, (k, v) = q.view(b, g, lq, heads, -1), kv.view(b, g, lk, 2, heads, -1).unbind(3)
        r_h = get_rel_pos(q_hw[0], k_hw[0], attn.rel_pos_h)
        r_w = get_rel_pos(q_hw[1], k_hw[1], attn.rel_pos_w)
        logits = q.new_zeros(b, g, heads, lq, lk)
        for n in range(lq):
            i, j = divmod(n, q_hw[1])
            for m in range(lk):
                i2, j2 = divmod(m, k_hw[1])
                qn = q[:, :, n]  # [b, g, heads, d]
                logits[..., n, m] = ((qn * k[:, :, m]).sum(-1) / math.sqrt(qn.shape[-1])
                                     + (qn * r_h[i, i2]).sum(-1) + (qn * r_w[j, j2]).sum(-1))
        if mask is not None:
            logits = logits + mask
        out = logits.softmax(-1) @ v.transpose(2, 3)  # [b, g, heads, lq, d]
        return attn.proj(out.transpose(2, 3).reshape(b, g, lq, c))


@pytest.mark.parametrize("pad_mask", ["valid", "released"])
def test_vit_block_cross_roles_with_relative_positions_equal_pairwise_attention(pad_mask):
    """init / refine / recover on a ViT block with relative positions (tables resized, grids stretched, padded
    keys masked) equal one gather of every region attended pair by pair: values and gradients, float64, 1e-12."""
    torch.manual_seed(0)
    block = Block(16, 2, use_rel_pos=True, rel_pos_size=3, layer_scale_init=0.7).double()
    with torch.no_grad():
        for name, p in block.named_parameters():
            if "norm" in name or "ls" in name or "rel_pos" in name:
                p.uniform_(0.5, 1.5)
    cfg = DumbbellConfig(window=3, pooled=2, init_kernel=4, refine_kernel=5, recover_kernel=3, pad_mask=pad_mask)
    x = torch.randn(2, 7, 8, 16, dtype=torch.float64)

    def run(role_fn):
        block.zero_grad()
        xx = x.clone().requires_grad_()
        s = role_fn("init", xx, None)
        out = role_fn("recover", xx, role_fn("refine", xx, s))
        out.square().sum().backward()
        return out, xx.grad, block.attn.rel_pos_h.grad, block.attn.rel_pos_w.grad

    fast = run(lambda role, xx, s: apply_role(role, block, xx, s, cfg)[0 if role == "recover" else 1])
    slow = run(lambda role, xx, s: one_gather_roles(PairwiseAttend(block), role, xx, s, cfg))
    for a, e in zip(fast, slow, strict=True):
        torch.testing.assert_close(a, e, rtol=0, atol=1e-12)


def test_vit_block_cross_roles_split_its_qkv():
    """init / recover on a ViT block equal a SemanticBlock holding the q and kv thirds of its qkv (scale 1)."""
    torch.manual_seed(0)
    vit_block = Block(16, 2).double()
    twin = SemanticBlock(16, 2, norm_layer=LAYER_NORM, layer_scale_init=1.0).double()
    with torch.no_grad():
        for name in ("norm1", "norm2", "mlp", "attn.proj"):
            twin.get_submodule(name).load_state_dict(vit_block.get_submodule(name).state_dict())
        w, b = vit_block.attn.qkv.weight, vit_block.attn.qkv.bias
        twin.attn.q.weight.copy_(w[:16])
        twin.attn.q.bias.copy_(b[:16])
        twin.attn.kv.weight.copy_(w[16:])
        twin.attn.kv.bias.copy_(b[16:])
        cfg = DumbbellConfig(pad_mask="valid")
        x = torch.randn(1, 10, 17, 16, dtype=torch.float64)
        _, s = apply_role("init", vit_block, x, None, cfg)
        torch.testing.assert_close(s, apply_role("init", twin, x, None, cfg)[1], rtol=1e-10, atol=1e-10)
        out = apply_role("recover", vit_block, x, s, cfg)[0]
        torch.testing.assert_close(out, apply_role("recover", twin, x, s, cfg)[0], rtol=1e-10, atol=1e-10)


# --- roles ------------------------------------------------------------------------------------------------------


def test_role_layouts():
    assert dumbbell_roles(12) == ("image", "init", "refine", "local", "global", "recover") * 2
    assert middle_dumbbell_roles(12) == (
        ("image",) * 3 + ("init", "local", "global", "local", "global", "recover") + ("image",) * 3
    )
    check_roles(middle_dumbbell_roles(12), "test")
    with pytest.raises(ValueError, match="no 'recover'"):
        check_roles(("image", "init", "global"), "test")
    with pytest.raises(ValueError, match="role 'image' of block 2 is between"):
        check_roles(("init", "global", "image", "recover"), "test")
    with pytest.raises(ValueError, match="role 'local' of block 0 is outside"):
        check_roles(("local", "recover"), "test")
    with pytest.raises(ValueError, match="unknown roles"):
        check_roles(("image", "pool"), "test")
    with pytest.raises(ValueError, match="pad_mask"):
        DumbbellConfig(pad_mask="exact")


# --- the plain-ViT adapter --------------------------------------------------------------------------------------

ROLES = ("image", "init", "local", "global", "recover", "image")


def tiny_stvit(**kwargs) -> STViTR:
    vit = ViT(embed_dim=64, depth=6, num_heads=2, img_size=128, window_size=7,
              window_block_indexes=(0, 2, 3, 5), use_rel_pos=True)
    return STViTR(vit, roles=ROLES, **kwargs)


@pytest.mark.parametrize("pad_mask", ["valid", "released", "none"])
def test_adapter_odd_sizes_through_the_simple_pyramid(pad_mask):
    torch.manual_seed(0)
    adapter = tiny_stvit(pad_mask=pad_mask)
    assert adapter.output_shapes == (ShapeSpec(64, 16),)
    pyramid = SimpleFeaturePyramid(adapter, out_channels=32)
    for h, w in [(128, 128), (97, 150), (33, 47)]:
        outs = pyramid(torch.randn(1, 3, h, w))
        gh, gw = math.ceil(h / 16), math.ceil(w / 16)
        expected = [(gh * 4, gw * 4), (gh * 2, gw * 2), (gh, gw), (gh // 2, gw // 2), (math.ceil(gh // 2 / 2),
                                                                                     math.ceil(gw // 2 / 2))]
        assert [tuple(o.shape[-2:]) for o in outs] == expected
        assert all(o.shape[:2] == (1, 32) and torch.isfinite(o).all() for o in outs)


def test_adapter_backward_reaches_every_parameter_and_checkpointing_matches():
    torch.manual_seed(0)
    adapter = tiny_stvit()
    with torch.no_grad():  # rel-pos tables start at zero; make them matter
        for name, p in adapter.named_parameters():
            if "rel_pos" in name:
                p.normal_(0, 0.1)
    x = torch.randn(2, 3, 97, 120)
    out = adapter(x)[0]
    out.square().mean().backward()
    assert [n for n, p in adapter.named_parameters() if p.grad is None or not p.grad.abs().sum()] == []
    adapter.vit.use_act_checkpoint = True
    torch.testing.assert_close(adapter(x)[0], out, rtol=1e-5, atol=1e-5)


def test_adapter_outputs_at_requested_blocks_and_checks_its_input():
    adapter = tiny_stvit(out_indices=(0, 4, 5))
    assert [s.stride for s in adapter.output_shapes] == [16, 16, 16]
    assert [o.shape for o in adapter(torch.randn(1, 3, 64, 80))] == [(1, 64, 4, 5)] * 3
    with pytest.raises(ValueError, match="out_indices"):
        tiny_stvit(out_indices=(2,))  # block 2 leaves semantic tokens
    with pytest.raises(ValueError, match="6 roles given for a ViT of depth 4"):
        STViTR(ViT(embed_dim=32, depth=4, num_heads=2, img_size=64), roles=ROLES)
    with pytest.raises(ValueError, match="lacks"):
        STViTR(nn.Linear(2, 2))
    vit = ViT(embed_dim=32, depth=2, num_heads=2, img_size=64)
    vit.blocks[0] = nn.Identity()
    with pytest.raises(ValueError, match=r"blocks \[0\] of ViT lack the RoleBlock methods"):
        STViTR(vit, roles=("init", "recover"))


# --- the quickstart config learns ---------------------------------------------------------------------------------


def test_quickstart_config_learns_on_tiny_data():
    """The quickstart's detector and STViT-R layout, narrowed (ViT 64 wide, 32-wide pyramid and heads) for speed."""
    cfg = load_config("configs/quickstart/mask_rcnn_stvit_r_tiny_demo.py")
    cfg.data_preprocessor.pad_size = 64
    cfg.model.backbone.backbone.vit.update(embed_dim=64, num_heads=2, img_size=64)
    cfg.model.backbone.out_channels = 32
    cfg.model.update(
        rpn_head_module=dict(type=rpn_head, in_channels=32, num_convs=1),
        box_head_module=dict(type=box_head, in_channels=32, conv_dim=32, num_convs=1, fc_dim=64),
        box_predictor_module=dict(type=box_predictor, in_channels=64, num_classes=5),
        mask_head_module=dict(type=mask_head, in_channels=32, conv_dim=32, num_convs=1),
        mask_predictor_module=dict(type=mask_predictor, in_channels=32, conv_dim=32, num_classes=5),
        box_batch_size_per_image=32,
        rpn_post_nms_top_n_train=100,
    )
    torch.manual_seed(0)
    model = build(to_plain(cfg.model))
    assert isinstance(model.backbone.backbone, STViTR)
    images, samples = [], []
    for i in range(2):  # one bright square per image, the rest dark
        image = torch.full((3, 64, 64), 30, dtype=torch.uint8)
        y0, x0 = 8 + 12 * i, 10 + 8 * i
        image[:, y0 : y0 + 28, x0 : x0 + 24] = 220
        mask = torch.zeros(1, 64, 64, dtype=torch.uint8)
        mask[0, y0 : y0 + 28, x0 : x0 + 24] = 1
        images.append(image)
        samples.append(dict(img_shape=(64, 64), boxes=torch.tensor([[x0, y0, x0 + 24, y0 + 28]], dtype=torch.float32),
                            labels=torch.tensor([i]), masks=mask))
    batch = build(to_plain(cfg.data_preprocessor))({"inputs": images, "data_samples": samples}, training=True)
    batch = Batch(batch["inputs"], batch["data_samples"])
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.optimizer.lr)
    losses = []
    model.train()
    for _ in range(6):
        loss = sum(model.loss(batch).values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert sum(losses[-2:]) / 2 < 0.85 * losses[0], losses


def test_exporting_leaves_the_mask_cache_usable_for_eager_calls():
    """Masks made while torch.export traces are not cached: the eager model still runs (and agrees) afterwards."""
    torch.manual_seed(0)
    model = STViTR(ViT(img_size=64, embed_dim=64, depth=4, num_heads=2), roles=("image", "init", "global", "recover"),
                   window=2, pooled=1, init_kernel=4, recover_kernel=3).eval()
    x = torch.randn(1, 3, 80, 80)  # 5x5 tokens: the windows are padded, so the regions need masks
    _region_mask.cache_clear()
    with torch.no_grad():
        torch.export.export(model, (x,))
        after = model(x)[0]  # a mask cached by the trace would not be a real tensor here
        _region_mask.cache_clear()
        reference = model(x)[0]
    torch.testing.assert_close(after, reference)

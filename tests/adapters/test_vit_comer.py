"""ViT-CoMer adapter: official checkpoint layout, sizes, any input size, reference quirks, training."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from densevit.adapters.vit_comer import (
    ViTCoMer,
    build_vit_comer,
    merged_dw_kernel,
)
from densevit.backbones.interface import ShapeSpec
from densevit.backbones.vit import ViT
from densevit.checkpoint import convert_vit_comer, load_weights

TINY_INDEXES = ((0, 0), (1, 1), (2, 2), (3, 3))


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def tiny_vit(**kwargs) -> ViT:
    return ViT(**{"img_size": 64, "embed_dim": 64, "depth": 4, "num_heads": 2, "layer_scale_init": 1.0, **kwargs})


def tiny_comer(vit: ViT | None = None, **kwargs) -> ViTCoMer:
    options = dict(interaction_indexes=TINY_INDEXES, conv_inplane=16, deform_num_heads=2, mrfp_ratio=0.5)
    return ViTCoMer(vit or tiny_vit(), **{**options, **kwargs})


def randomise(model: nn.Module, seed: int = 0) -> None:
    """Zero-initialised tensors (gamma, offsets, attention weights) would hide errors in their use."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if not t.is_floating_point():
                continue
            if "running_var" in name:
                t.uniform_(0.5, 1.5, generator=g)
            else:
                t.add_(torch.randn(t.shape, generator=g, dtype=t.dtype) * (0.02 if "sampling_offsets" in name else 0.1))


# --- official checkpoint layout ----------------------------------------------------------------------------


def expand(pattern: str) -> list[str]:
    """Brace expansion as in the official checkpoints' key layout: 'a.{b,c}.d' -> ['a.b.d', 'a.c.d'] (nesting
    allowed)."""
    start = pattern.find("{")
    if start < 0:
        return [pattern]
    depth, parts, last = 0, [], start + 1
    for i in range(start, len(pattern)):
        depth += {"{": 1, "}": -1}.get(pattern[i], 0)
        if depth == 1 and pattern[i] == ",":
            parts.append(pattern[last:i])
            last = i + 1
        if depth == 0:
            parts.append(pattern[last:i])
            break
    head, tail = pattern[:start], pattern[i + 1:]
    return [key for part in parts for key in expand(head + part + tail)]


LINEAR = "{weight,bias}"
BN = "{weight,bias,running_mean,running_var,num_batches_tracked}"
ATTN = "attn.{sampling_offsets,attention_weights,value_proj,output_proj}"
FFN = "ffn.{fc1,dwconv.dwconv,fc2}"
CFINTER = f"cfinter.{{query_norm,feat_norm,ffn_norm,{ATTN},{FFN}}}.{LINEAR}"
# The official ViT-CoMer backbone keys (spec vit_comer.md) for 4 blocks with one interaction each.
OFFICIAL_LAYOUT = [
    "pos_embed", "level_embed", f"patch_embed.proj.{LINEAR}",
    "blocks.{0,1,2,3}.{gamma1,gamma2}",
    f"blocks.{{0,1,2,3}}.{{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}}.{LINEAR}",
    "spm.stem.{0,3,6}.weight", f"spm.stem.{{1,4,7}}.{BN}", "spm.conv{2,3,4}.0.weight", f"spm.conv{{2,3,4}}.1.{BN}",
    f"spm.fc{{1,2,3,4}}.{LINEAR}",
    "interactions.{0,1,2,3}.cti_tov.gamma",
    f"interactions.{{0,1,2,3}}.cti_tov.{{query_norm,feat_norm,ffn_norm,{ATTN},{FFN}}}.{LINEAR}",
    f"interactions.{{0,1,2,3}}.cti_toc.{{query_norm,feat_norm}}.{LINEAR}",
    f"interactions.{{0,1,2,3}}.cti_toc.{CFINTER}",
    f"interactions.{{0,1,2,3}}.mrfp.{{fc1,fc2,dwconv.dwconv1,dwconv.dwconv2,dwconv.dwconv3,dwconv.dwconv4,"
    f"dwconv.dwconv5,dwconv.dwconv6}}.{LINEAR}",
    f"interactions.{{0,1,2,3}}.mrfp.dwconv.bn{{1,2,3}}.{BN}",
    f"interactions.3.extra_CTIs.{{0,1,2,3}}.{{query_norm,feat_norm,ffn_norm,{FFN}}}.{LINEAR}",
    f"interactions.3.extra_CTIs.{{0,1,2,3}}.{CFINTER}",
    f"up.{LINEAR}", f"norm{{1,2,3,4}}.{BN}",
]
OLD_NAMES = {"cti_tov": "injector", "cti_toc": "extractor", "extra_CTIs": "extra_extractors", "mrfp": "multiconv"}


def official_state_dict(model: ViTCoMer) -> dict[str, torch.Tensor]:
    """Our weights under the official names: ViT keys at the top level, layer scale as gamma1/gamma2."""
    out = {}
    for key, value in model.state_dict().items():
        key = key.removeprefix("backbone.").replace(".ls1.gamma", ".gamma1").replace(".ls2.gamma", ".gamma2")
        out[key] = value.clone()
    return out


def test_state_dict_has_the_official_layout():
    keys = set(official_state_dict(tiny_comer()))
    expected = {k for pattern in OFFICIAL_LAYOUT for k in expand(pattern)}
    assert keys == expected, (sorted(keys - expected), sorted(expected - keys))


@pytest.mark.parametrize("old_names", [False, True])
@pytest.mark.parametrize("prefix", [False, True])
def test_official_checkpoints_load_strictly(old_names, prefix, tmp_path):
    source = tiny_comer()
    randomise(source)
    state = official_state_dict(source)
    if old_names:
        state = {".".join(OLD_NAMES.get(part, part) for part in k.split(".")): v for k, v in state.items()}
        assert any(".injector." in k for k in state)
    if prefix:  # a full detector checkpoint: backbone.* plus neck and head keys
        state = {f"backbone.{k}": v for k, v in state.items()} | {"neck.conv.weight": torch.zeros(1)}
    target = tiny_comer()
    target.load_state_dict(convert_vit_comer(state), strict=True)
    torch.save({"state_dict": state}, tmp_path / "vit_comer.pth")
    target = tiny_comer()
    report = load_weights(target, tmp_path / "vit_comer.pth")  # strict, ViTCoMer's default converter
    assert report.converter == "vit_comer" and report.new == []
    for (name, a), b in zip(source.state_dict().items(), target.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_pretrained_file_loads_official_and_vit_only_weights(tmp_path):
    source = tiny_comer()
    randomise(source)
    full = tmp_path / "vit_comer.pth"
    torch.save({"state_dict": {f"backbone.{k}": v for k, v in official_state_dict(source).items()}}, full)
    model = tiny_comer()
    load_weights(model, full)
    assert all(torch.equal(a, b) for a, b in zip(source.state_dict().values(), model.state_dict().values(),
                                                 strict=True))

    # DINOv2 as the reference uses it: patch 14 kernel, layer scale ls1/ls2, mask token, 37x37 positions.
    dinov2 = {k.removeprefix("backbone."): v for k, v in tiny_vit().state_dict().items()}
    dinov2["patch_embed.proj.weight"] = torch.randn(64, 3, 14, 14)
    dinov2["pos_embed"] = torch.randn(1, 1 + 37 * 37, 64)
    dinov2["mask_token"] = torch.zeros(1, 64)
    dinov2["blocks.0.ls1.gamma"] = torch.full((64,), 0.5)
    path = tmp_path / "dinov2.pth"
    torch.save(dinov2, path)
    model = tiny_comer(tiny_vit(pretrain_img_size=592))
    init_level_embed = model.level_embed.detach().clone()
    report = load_weights(model, path)
    missing, unexpected = report.missing, report.unexpected
    assert not unexpected and all(not k.startswith("backbone.") for k in missing)
    assert torch.equal(model.level_embed, init_level_embed)  # adapter left at its init
    assert torch.equal(model.backbone.blocks[0].ls1.gamma, torch.full((64,), 0.5))
    expected_kernel = F.interpolate(dinov2["patch_embed.proj.weight"], size=(16, 16), mode="bilinear",
                                    align_corners=False)
    torch.testing.assert_close(model.backbone.patch_embed.proj.weight, expected_kernel)


# --- sizes and init ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "size,task,millions",
    [("tiny", "segmentation", 10.62), ("small", "segmentation", 31.28), ("base", "segmentation", 110.60),
     ("small", "detection", 30.46), ("base", "detection", 109.05)],
)
def test_parameter_counts_match_the_reference(size, task, millions):
    detection = dict(pretrain_img_size=592, window_size=14) if task == "detection" else {}
    with torch.device("meta"):
        model = build_vit_comer(size, task, **detection)
    assert round(sum(p.numel() for p in model.parameters()) / 1e6, 2) == millions


def test_reference_initialisation():
    torch.manual_seed(0)
    model = build_vit_comer("small", "segmentation")
    inter = model.interactions[0]
    assert torch.count_nonzero(inter.cti_tov.gamma) == 0
    assert torch.count_nonzero(inter.cti_tov.attn.attention_weights.weight) == 0
    assert abs(model.level_embed.std().item() - 1.0) < 0.1
    assert abs(inter.mrfp.fc1.weight.std().item() - 0.02) < 0.002
    conv = model.spm.conv3[0]  # normal(0, sqrt(2 / fan_out)), fan_out = 3 * 3 * 256
    assert abs(conv.weight.std().item() - math.sqrt(2 / (9 * 256))) < 0.003
    assert isinstance(model.norm1, nn.BatchNorm2d) and not isinstance(model.norm1, nn.SyncBatchNorm)


# --- forward -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("vit_feature", ["interaction", "final"])
def test_any_input_size_pads_and_crops(vit_feature):
    torch.manual_seed(0)
    model = tiny_comer(vit_feature=vit_feature).eval()
    randomise(model)
    x = torch.randn(1, 3, 50, 66)  # neither a multiple of 32 nor of 16
    with torch.no_grad():
        outs = model(x)
        padded = model(F.pad(x, (0, 96 - 66, 0, 64 - 50)))
    assert [tuple(o.shape) for o in outs] == [(1, 64, 13, 17), (1, 64, 7, 9), (1, 64, 4, 5), (1, 64, 2, 3)]
    for out, full in zip(outs, padded, strict=True):
        torch.testing.assert_close(out, full[..., : out.shape[-2], : out.shape[-1]])


def test_odd_size_250x330_runs():
    model = tiny_comer().eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 250, 330))
    assert [tuple(o.shape[-2:]) for o in outs] == [(63, 83), (32, 42), (16, 21), (8, 11)]
    assert model.output_shapes == tuple(ShapeSpec(64, s) for s in (4, 8, 16, 32))


def test_vit_feature_sources_differ_as_documented():
    torch.manual_seed(0)
    per_interaction = tiny_comer().eval()
    randomise(per_interaction)
    final = tiny_comer(vit_feature="final").eval()
    final.load_state_dict(per_interaction.state_dict())
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        a, b = per_interaction(x), final(x)
    torch.testing.assert_close(a[3], b[3])  # level 4 gets the last interaction's x in both
    assert not torch.allclose(a[0], b[0])


def test_windowed_blocks_pad_qkv_with_zeros():
    torch.manual_seed(0)
    vit = tiny_vit(window_size=3, window_block_indexes=(0,))
    randomise(vit)
    block = vit.blocks[0]
    x = torch.randn(1, 4, 5, 64)
    # Explicit: project, zero-pad q/k/v to 6x6, attend within 3x3 windows (padded keys score 0), crop.
    qkv = F.pad(block.attn.qkv(block.norm1(x)), (0, 0, 0, 1, 0, 2))  # [1, 6, 6, 192]
    out = torch.zeros(1, 6, 6, 64)
    for i in range(0, 6, 3):
        for j in range(0, 6, 3):
            q, k, v = qkv[0, i:i + 3, j:j + 3].reshape(9, 3, 2, 32).permute(1, 2, 0, 3)
            attn = ((q @ k.transpose(-1, -2)) / math.sqrt(32)).softmax(-1)
            out[0, i:i + 3, j:j + 3] = (attn @ v).transpose(0, 1).reshape(3, 3, 64)
    y = x + block.ls1(block.attn.proj(out[:, :4, :5]))
    expected = y + block.ls2(block.mlp(block.norm2(y)))
    torch.testing.assert_close(block(x, zero_pad_qkv=True), expected, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(block(x), expected, atol=1e-4)  # ViTDet's padding differs


def test_merged_depthwise_kernel_equals_two_convs():
    torch.manual_seed(0)
    conv3, conv5 = nn.Conv2d(4, 4, 3, padding=1, groups=4), nn.Conv2d(4, 4, 5, padding=2, groups=4)
    x = torch.randn(2, 8, 7, 9)
    weight, bias = merged_dw_kernel(conv3, conv5)
    expected = torch.cat([conv3(x[:, :4]), conv5(x[:, 4:])], dim=1)
    torch.testing.assert_close(F.conv2d(x, weight, bias, padding=2, groups=8), expected)


# --- training ----------------------------------------------------------------------------------------------


def test_trains_one_step_under_bf16_autocast():
    torch.manual_seed(0)
    model = tiny_comer(drop_path_rate=0.1).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = sum(o.float().pow(2).mean() for o in model(torch.randn(2, 3, 64, 96)))
    loss.backward()
    assert torch.isfinite(loss)
    # cti_tov's gamma starts at 0, so its offsets get no gradient yet; the conv-side interaction's do.
    offsets = model.interactions[0].cti_toc.cfinter.attn.sampling_offsets.weight
    assert offsets.grad is not None and offsets.grad.abs().sum() > 0
    assert model.interactions[0].cti_tov.gamma.grad.abs().sum() > 0
    optimizer.step()
    changed = [k for k, v in model.named_parameters() if not torch.equal(v, before[k])]
    assert "backbone.blocks.0.attn.qkv.weight" in changed and "level_embed" in changed


def test_activation_checkpointing_gives_the_same_gradients():
    grads = []
    for use_cp in (False, True):
        torch.manual_seed(0)
        model = tiny_comer(use_act_checkpoint=use_cp).double().train()
        randomise(model)
        x = torch.randn(2, 3, 64, 64, dtype=torch.float64)
        sum(o.pow(2).mean() for o in model(x)).backward()
        grads.append({k: p.grad for k, p in model.named_parameters()})
    for key, grad in grads[0].items():
        torch.testing.assert_close(grads[1][key], grad, msg=key)


def test_rejects_bad_configurations():
    with pytest.raises(ValueError, match="interaction_indexes"):
        tiny_comer(interaction_indexes=((0, 2), (1, 3)))
    with pytest.raises(ValueError, match="patch-16"):
        tiny_comer(tiny_vit(patch_size=8))
    with pytest.raises(ValueError, match="4 interactions"):
        tiny_comer(interaction_indexes=((0, 1), (2, 3)))

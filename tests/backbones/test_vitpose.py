"""ViTPose's ViT: official and mmpose 1.x files (built here in their layouts, tiny) load strictly, and the forward
equals the reference maths written out below (patch padding 2, class slot folded into every position, last_norm);
MAE initialisation; layer-wise lr decay as ViTPose groups it."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from densevit.backbones.vitpose import VITPOSE_LAYER_DECAY, VITPOSE_SIZES, ViTPoseBackbone
from densevit.checkpoint import load_weights
from densevit.engine.optim import param_groups
from densevit.heads.pose import ClassicPoseHead, SimplePoseHead
from densevit.models.pose import TopDownPose

pytestmark = pytest.mark.usefixtures("one_thread")

DIM, DEPTH, HEADS, K = 64, 2, 4, 5
IMG = (64, 48)  # (h, w): a 4 x 3 token grid
GRID = (4, 3)


def official_state(classic: bool = True) -> dict[str, torch.Tensor]:
    """Random tensors under the official ViTPose names and shapes (``backbone.*``, ``keypoint_head.*``)."""
    g = torch.Generator().manual_seed(0)

    def t(*shape, scale=0.05):
        return torch.randn(*shape, generator=g) * scale

    sd = {"backbone.patch_embed.proj.weight": t(DIM, 3, 16, 16), "backbone.patch_embed.proj.bias": t(DIM),
          "backbone.pos_embed": t(1, 1 + GRID[0] * GRID[1], DIM, scale=0.5)}
    for i in range(DEPTH):
        p = f"backbone.blocks.{i}."
        sd.update({p + "norm1.weight": 1 + t(DIM), p + "norm1.bias": t(DIM),
                   p + "attn.qkv.weight": t(3 * DIM, DIM, scale=0.2), p + "attn.qkv.bias": t(3 * DIM),
                   p + "attn.proj.weight": t(DIM, DIM, scale=0.2), p + "attn.proj.bias": t(DIM),
                   p + "norm2.weight": 1 + t(DIM), p + "norm2.bias": t(DIM),
                   p + "mlp.fc1.weight": t(4 * DIM, DIM, scale=0.2), p + "mlp.fc1.bias": t(4 * DIM),
                   p + "mlp.fc2.weight": t(DIM, 4 * DIM, scale=0.2), p + "mlp.fc2.bias": t(DIM)})
    sd.update({"backbone.last_norm.weight": 1 + t(DIM), "backbone.last_norm.bias": t(DIM)})
    if classic:
        for i, (cin, cout) in zip((0, 3), ((DIM, 32), (32, 32)), strict=True):
            sd[f"keypoint_head.deconv_layers.{i}.weight"] = t(cin, cout, 4, 4, scale=0.2)
            bn = f"keypoint_head.deconv_layers.{i + 1}."
            sd.update({bn + "weight": 1 + t(cout), bn + "bias": t(cout), bn + "running_mean": t(cout),
                       bn + "running_var": 1 + t(cout).abs(), bn + "num_batches_tracked": torch.tensor(7)})
        sd.update({"keypoint_head.final_layer.weight": t(K, 32, 1, 1), "keypoint_head.final_layer.bias": t(K)})
    else:
        sd.update({"keypoint_head.final_layer.weight": t(K, DIM, 3, 3), "keypoint_head.final_layer.bias": t(K)})
    return sd


def reference_forward(sd: dict[str, torch.Tensor], x: torch.Tensor, classic: bool, fold: bool = True) -> torch.Tensor:
    """ViTPose's forward from the official-layout tensors, in plain functional ops (tokens as [B, N, C])."""
    b = x.shape[0]
    x = F.conv2d(x, sd["backbone.patch_embed.proj.weight"], sd["backbone.patch_embed.proj.bias"], stride=16,
                 padding=2)
    hp, wp = x.shape[-2:]
    x = x.flatten(2).transpose(1, 2)
    pos = sd["backbone.pos_embed"]
    x = x + pos[:, 1:] + pos[:, :1] if fold else x + pos[:, 1:]  # not folded: the class slot dropped
    for i in range(DEPTH):
        p = f"backbone.blocks.{i}."
        y = F.layer_norm(x, (DIM,), sd[p + "norm1.weight"], sd[p + "norm1.bias"], eps=1e-6)
        qkv = F.linear(y, sd[p + "attn.qkv.weight"], sd[p + "attn.qkv.bias"]).reshape(b, -1, 3, HEADS, DIM // HEADS)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        attn = ((q * (DIM // HEADS) ** -0.5) @ k.transpose(-2, -1)).softmax(-1)
        y = (attn @ v).transpose(1, 2).reshape(b, -1, DIM)
        x = x + F.linear(y, sd[p + "attn.proj.weight"], sd[p + "attn.proj.bias"])
        y = F.layer_norm(x, (DIM,), sd[p + "norm2.weight"], sd[p + "norm2.bias"], eps=1e-6)
        y = F.linear(F.gelu(F.linear(y, sd[p + "mlp.fc1.weight"], sd[p + "mlp.fc1.bias"])),
                     sd[p + "mlp.fc2.weight"], sd[p + "mlp.fc2.bias"])
        x = x + y
    x = F.layer_norm(x, (DIM,), sd["backbone.last_norm.weight"], sd["backbone.last_norm.bias"], eps=1e-6)
    x = x.transpose(1, 2).reshape(b, DIM, hp, wp)
    if classic:
        for i in (0, 3):
            x = F.conv_transpose2d(x, sd[f"keypoint_head.deconv_layers.{i}.weight"], stride=2, padding=1)
            bn = f"keypoint_head.deconv_layers.{i + 1}."
            x = F.relu(F.batch_norm(x, sd[bn + "running_mean"], sd[bn + "running_var"], sd[bn + "weight"],
                                    sd[bn + "bias"], training=False, eps=1e-5))
        return F.conv2d(x, sd["keypoint_head.final_layer.weight"], sd["keypoint_head.final_layer.bias"])
    x = F.interpolate(F.relu(x), scale_factor=4, mode="bilinear", align_corners=False)
    return F.conv2d(x, sd["keypoint_head.final_layer.weight"], sd["keypoint_head.final_layer.bias"], padding=1)


def tiny_pose(classic: bool = True) -> TopDownPose:
    backbone = ViTPoseBackbone(img_size=IMG, embed_dim=DIM, depth=DEPTH, num_heads=HEADS)
    head = ClassicPoseHead(DIM, K, channels=32) if classic else SimplePoseHead(DIM, K)
    return TopDownPose(backbone=backbone, head=head, num_keypoints=K, flip_pairs=[(1, 2), (3, 4)]).eval()


def to_mmpose(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The same weights under mmpose 1.x names (mmpretrain ViT without a class slot, ``head.*``)."""
    renames = [("backbone.patch_embed.proj.", "backbone.patch_embed.projection."),
               ("backbone.last_norm.", "backbone.ln1."), ("backbone.blocks.", "backbone.layers."),
               (".norm1.", ".ln1."), (".norm2.", ".ln2."), (".mlp.fc1.", ".ffn.layers.0.0."),
               (".mlp.fc2.", ".ffn.layers.1."), ("keypoint_head.", "head.")]
    out = {}
    for key, value in sd.items():
        for old, new in renames:
            key = key.replace(old, new)
        out[key] = value
    pos = sd["backbone.pos_embed"]
    out["backbone.pos_embed"] = pos[:, 1:] + pos[:, :1]  # what a 1.x model trained from it holds: 192 entries
    return out


@pytest.mark.parametrize("classic", [True, False], ids=["classic", "simple"])
def test_official_file_loads_strictly_and_matches_the_reference(tmp_path, classic):
    sd = official_state(classic)
    path = tmp_path / "vitpose.pth"
    torch.save({"meta": {"epoch": 210}, "state_dict": sd}, path)
    model = tiny_pose(classic)
    report = load_weights(model, path)  # TopDownPose's default converter: the official layout, strict
    assert not report.missing and not report.unexpected and len(report.loaded) == len(sd)
    x = torch.randn(2, 3, *IMG, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours = model(x)
        ref = reference_forward(sd, x, classic)
    assert ours.shape == (2, K, 16, 12)
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-5)
    # Padding 0 or an unfolded class slot give different numbers: the test sees both details.
    assert not torch.allclose(ref, reference_forward(sd, x, classic, fold=False), atol=1e-3)
    model.backbone.patch_embed.proj.padding = (0, 0)
    with torch.no_grad():
        assert not torch.allclose(model(x), ref, atol=1e-3)


def test_mmpose_file_loads_strictly_and_matches_the_reference(tmp_path):
    sd = official_state(classic=True)
    path = tmp_path / "mmpose_vitpose.pth"
    torch.save({"meta": {}, "state_dict": to_mmpose(sd)}, path)
    model = tiny_pose(classic=True)
    report = load_weights(model, path, "mmpose_vitpose")
    assert not report.missing and not report.unexpected
    x = torch.randn(1, 3, *IMG, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference_forward(sd, x, classic=True), rtol=1e-4, atol=1e-5)


def test_vitpose_plus_file_is_refused_with_the_way_out(tmp_path):
    sd = {**official_state(), "backbone.blocks.0.mlp.experts.0.weight": torch.zeros(8, 4 * DIM)}
    torch.save({"state_dict": sd}, tmp_path / "vitpose+_base.pth")
    with pytest.raises(ValueError, match=r"model_split\.py"):
        load_weights(tiny_pose(), tmp_path / "vitpose+_base.pth")


def test_wrong_layout_is_an_error_naming_the_file(tmp_path):
    path = tmp_path / "mmpose_vitpose.pth"
    torch.save({"state_dict": to_mmpose(official_state())}, path)
    with pytest.raises(ValueError, match=r"mmpose_vitpose\.pth"):
        load_weights(tiny_pose(), path)  # the official converter on a 1.x file


@pytest.mark.parametrize(("img", "grid"), [(IMG, GRID), ((384, 288), (24, 18)), ((64, 64), (4, 4))])
def test_mae_file_initialises_the_backbone(tmp_path, img, grid):
    sd = {k[len("backbone."):]: v for k, v in official_state().items()
          if k.startswith("backbone.") and "last_norm" not in k and "pos_embed" not in k}
    pos = torch.randn(1, 1 + 14 * 14, DIM)
    mae = {**sd, "pos_embed": pos, "cls_token": torch.zeros(1, 1, DIM), "norm.weight": torch.ones(DIM),
           "norm.bias": torch.zeros(DIM), "mask_token": torch.zeros(1, 1, DIM)}
    path = tmp_path / "mae_pretrain.pth"
    torch.save({"model": mae}, path)
    backbone = ViTPoseBackbone(img_size=img, embed_dim=DIM, depth=DEPTH, num_heads=HEADS)
    report = load_weights(backbone, path)  # default: the MAE layout; the grid follows the crop's 4:3 or square
    assert sorted(report.new) == ["last_norm.bias", "last_norm.weight"] and not report.missing
    table = F.interpolate(pos[:, 1:].reshape(1, 14, 14, DIM).permute(0, 3, 1, 2), size=grid, mode="bicubic",
                          align_corners=False)
    expect = torch.cat([pos[:, :1], table.flatten(2).transpose(1, 2)], dim=1)
    torch.testing.assert_close(backbone.pos_embed.data, expect)


def test_mae_patch14_kernel_is_zero_padded_to_16(tmp_path):
    kernel = torch.randn(DIM, 3, 14, 14)
    mae = {"patch_embed.proj.weight": kernel, "patch_embed.proj.bias": torch.zeros(DIM),
           "pos_embed": torch.randn(1, 1 + 16 * 16, DIM)}  # ViT-H/14 at 224: 16x16 positions
    torch.save({"model": mae}, tmp_path / "mae_pretrain_vit_huge.pth")
    backbone = ViTPoseBackbone(img_size=IMG, embed_dim=DIM, depth=DEPTH, num_heads=HEADS)
    load_weights(backbone, tmp_path / "mae_pretrain_vit_huge.pth", strict=False)  # blocks absent from this file
    padded = backbone.patch_embed.proj.weight.data
    torch.testing.assert_close(padded[..., 1:15, 1:15], kernel)
    assert padded[..., 0, :].abs().sum() == 0 and padded[..., :, 15].abs().sum() == 0


def test_sizes_and_layer_decay_as_vitpose():
    assert VITPOSE_SIZES["small"]["num_heads"] == 12  # not timm's 6
    assert [VITPOSE_SIZES[s]["drop_path_rate"] for s in ("small", "base", "large", "huge")] == [0.1, 0.3, 0.5, 0.55]
    with torch.device("meta"):
        base = ViTPoseBackbone(**VITPOSE_SIZES["base"])
    # timm ViT-B/16 (85,798,656 without its classifier) less the class token and 197 - 193 position entries.
    assert sum(p.numel() for p in base.parameters()) == 85_794_816
    model = tiny_pose()
    rate = VITPOSE_LAYER_DECAY["base"]
    groups = param_groups(model, lr=5e-4, weight_decay=0.1, layer_decay=rate, no_decay_names=("pos_embed", "bias"))
    scale = {id(p): (g["lr_mult"], g["weight_decay"]) for g in groups for p in g["params"]}
    named = dict(model.named_parameters())
    n = DEPTH + 2
    expect = {
        "backbone.pos_embed": (rate ** (n - 1), 0.0),
        "backbone.patch_embed.proj.weight": (rate ** (n - 1), 0.1),
        "backbone.patch_embed.proj.bias": (rate ** (n - 1), 0.0),
        "backbone.blocks.0.attn.qkv.weight": (rate ** (n - 2), 0.1),
        "backbone.blocks.1.norm1.weight": (rate ** (n - 3), 0.0),
        "backbone.last_norm.weight": (1.0, 0.0),
        "head.deconv_layers.0.weight": (1.0, 0.1),
        "head.final_layer.bias": (1.0, 0.0),
    }
    for name, (lr_mult, wd) in expect.items():
        assert scale[id(named[name])] == pytest.approx((lr_mult, wd)), name


def test_other_input_size_resizes_the_folded_table():
    backbone = ViTPoseBackbone(img_size=IMG, embed_dim=DIM, depth=DEPTH, num_heads=HEADS).eval()
    out = backbone(torch.randn(1, 3, 96, 64))
    assert [tuple(o.shape) for o in out] == [(1, DIM, 6, 4)]

"""ViT-CoMer (Xia et al., CVPR 2024): a plain ViT plus a convolutional multi-scale branch that talks to it.

Data layout. The ViT tokens ``x`` stay a [B, h, w, D] grid (stride 16). The convolutional features ``c`` are one
token sequence [B, N, D] holding the stride 8, 16 and 32 maps row-major one after the other (N = 21 h w / 4);
``levels`` lists their (height, width). Both are channels-last, so moving between tokens and maps is a view and
the depthwise convolutions run on channels-last memory.

One interaction (``Interaction``) per group of ViT blocks:
``inject``: MRFP replaces c, the ViT tokens are added to its stride-16 part, CTI_toV (deformable self-attention
over c + ConvFFN) is resampled to stride 16 and added to x through a zero-initialised ``gamma``;
the group's ViT blocks run;
``extract``: CTI_toC adds x to the stride-16 part of c and, with ``cnn_feature_interaction``, runs deformable
self-attention over c again; the last interaction runs 4 extra such CTIs, each with a ConvFFN.
Every numerical quirk of the reference is kept (normalised residual in the feature interaction, GELU twice in
MRFP, zero-padded q/k/v in windowed blocks); see the official code, github.com/Traffic-X/ViT-CoMer, and
docs/adapters.md.

The output BatchNorms (and the conv branch's) are plain ``nn.BatchNorm2d``: the trainer turns them into
``SyncBatchNorm`` with ``nn.SyncBatchNorm.convert_sync_batchnorm`` only under distributed training (the reference
hard-codes SyncBatchNorm, which fails on a single device).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from timm.layers import DropPath
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from densevit.backbones.interface import ShapeSpec
from densevit.backbones.vit import VIT_SIZES, ViT
from densevit.layers import ConvNormAct
from densevit.ops.ms_deform_attn import MSDeformAttn, reference_points
from densevit.ops.resize import pad_to_multiple, resize

__all__ = [
    "MRFP",
    "VIT_COMER_SIZES",
    "CNNFeatureInteraction",
    "CTIToC",
    "CTIToV",
    "ConvFFN",
    "Interaction",
    "SpatialPriorModule",
    "ViTCoMer",
    "build_vit_comer",
]

Levels = tuple[tuple[int, int], ...]  # (height, width) of the stride 8, 16 and 32 maps
LayerNorm = partial(nn.LayerNorm, eps=1e-6)


# --- token <-> map helpers ---------------------------------------------------------------------------------


def token_levels(h: int, w: int) -> Levels:
    """Sizes of the stride 8, 16 and 32 maps for an (h, w) stride-16 grid (h, w even)."""
    return (2 * h, 2 * w), (h, w), (h // 2, w // 2)


def split_levels(c: Tensor, levels: Levels) -> list[Tensor]:
    """c: [B, N, C] -> one [B, h_l, w_l, C] view per level."""
    parts = c.split([h * w for h, w in levels], dim=1)
    return [p.view(c.shape[0], h, w, c.shape[2]) for p, (h, w) in zip(parts, levels, strict=True)]


def merge_levels(maps: Sequence[Tensor]) -> Tensor:
    """One [B, h_l, w_l, C] map per level -> c: [B, N, C]."""
    return torch.cat([m.flatten(1, 2) for m in maps], dim=1)


def add_to_middle(c: Tensor, x: Tensor, levels: Levels) -> Tensor:
    """c = cat[c8, c16 + x, c32]: c [B, N, C], x [B, h, w, C] (the stride-16 grid)."""
    c8, c16, c32 = split_levels(c, levels)
    return merge_levels([c8, c16 + x, c32])


def conv_levels(conv: Callable[[Tensor], Tensor], c: Tensor, levels: Levels) -> Tensor:
    """Apply an NCHW -> NCHW function to every level of c: [B, N, C] -> [B, N, C']."""
    maps = [conv(m.permute(0, 3, 1, 2)).permute(0, 2, 3, 1) for m in split_levels(c, levels)]
    return merge_levels(maps)


# --- convolutional branch ----------------------------------------------------------------------------------


class SpatialPriorModule(nn.Module):
    """ResNet-like stem + three strided convs: maps at strides 4, 8, 16, 32, each projected to ``dim`` channels."""

    def __init__(self, inplanes: int = 64, dim: int = 384) -> None:
        super().__init__()
        # The stem's layers are numbered flat (stem.0 .. stem.9), as in the released checkpoints.
        self.stem = nn.Sequential(
            *ConvNormAct(3, inplanes, 3, stride=2),
            *ConvNormAct(inplanes, inplanes, 3),
            *ConvNormAct(inplanes, inplanes, 3),
            nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
        )
        self.conv2 = ConvNormAct(inplanes, 2 * inplanes, 3, stride=2)
        self.conv3 = ConvNormAct(2 * inplanes, 4 * inplanes, 3, stride=2)
        self.conv4 = ConvNormAct(4 * inplanes, 4 * inplanes, 3, stride=2)
        self.fc1 = nn.Conv2d(inplanes, dim, 1)
        self.fc2 = nn.Conv2d(2 * inplanes, dim, 1)
        self.fc3 = nn.Conv2d(4 * inplanes, dim, 1)
        self.fc4 = nn.Conv2d(4 * inplanes, dim, 1)

    def forward(self, x: Tensor) -> list[Tensor]:
        """x: [B, 3, H, W] (H, W multiples of 32) -> [c1 [B, H/4, W/4, D], c2 (/8), c3 (/16), c4 (/32)]."""
        # Channels-last convolutions give channels-last outputs, so the token views below are free.
        f1 = self.stem(x.contiguous(memory_format=torch.channels_last))
        f2 = self.conv2(f1)
        f3 = self.conv3(f2)
        f4 = self.conv4(f3)
        fcs = (self.fc1, self.fc2, self.fc3, self.fc4)
        return [fc(f).permute(0, 2, 3, 1) for fc, f in zip(fcs, (f1, f2, f3, f4), strict=True)]


class DWConv(nn.Module):
    """One depthwise 3x3 conv shared by the three levels of a token sequence."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 3, 1, 1, groups=dim)

    def forward(self, x: Tensor, levels: Levels) -> Tensor:
        """x: [B, N, C] -> [B, N, C]."""
        return conv_levels(self.dwconv, x, levels)


class ConvFFN(nn.Module):
    """fc1 -> depthwise conv per level (``dwconv``: 3x3, or MRFP's 3x3 + 5x5) -> GELU -> fc2 (no dropout: the
    reference's rate is always 0)."""

    def __init__(self, dim: int, hidden: int, dwconv: Callable[[int], nn.Module] = DWConv) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.dwconv = dwconv(hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor, levels: Levels) -> Tensor:
        """x: [B, N, C] -> [B, N, C]."""
        return self.fc2(self.act(self.dwconv(self.fc1(x), levels)))


def merged_dw_kernel(conv3: nn.Conv2d, conv5: nn.Conv2d) -> tuple[Tensor, Tensor]:
    """One depthwise 5x5 kernel equal to a 3x3 conv on the first channels and a 5x5 conv on the rest.

    The 3x3 kernel is zero-padded to 5x5, which adds exact zeros: same output as the two convs plus a concat,
    without splitting the (channels-last) input. Returns (weight [C, 1, 5, 5], bias [C]).
    """
    weight = torch.cat([F.pad(conv3.weight, (1, 1, 1, 1)), conv5.weight])
    return weight, torch.cat([conv3.bias, conv5.bias])


class MultiDWConv(nn.Module):
    """Per level: depthwise 3x3 on the first half of the channels, 5x5 on the second, BatchNorm, GELU."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        half = dim // 2
        for level in range(3):  # dwconv1/2: stride 8, dwconv3/4: stride 16, dwconv5/6: stride 32
            self.add_module(f"dwconv{2 * level + 1}", nn.Conv2d(half, half, 3, 1, 1, groups=half))
            self.add_module(f"dwconv{2 * level + 2}", nn.Conv2d(half, half, 5, 1, 2, groups=half))
            self.add_module(f"bn{level + 1}", nn.BatchNorm2d(dim))
        self.act = nn.GELU()

    def forward(self, x: Tensor, levels: Levels) -> Tensor:
        """x: [B, N, C] -> [B, N, C]."""
        maps = []
        for level, m in enumerate(split_levels(x, levels)):
            weight, bias = merged_dw_kernel(getattr(self, f"dwconv{2 * level + 1}"),
                                            getattr(self, f"dwconv{2 * level + 2}"))
            y = F.conv2d(m.permute(0, 3, 1, 2), weight, bias, padding=2, groups=weight.shape[0])
            maps.append(self.act(getattr(self, f"bn{level + 1}")(y)).permute(0, 2, 3, 1))
        return merge_levels(maps)


class MRFP(ConvFFN):
    """Multi-receptive-field feature pyramid: fc1 -> MultiDWConv (ends in GELU) -> GELU again -> fc2."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__(dim, hidden, MultiDWConv)


# --- interaction modules -----------------------------------------------------------------------------------


class CNNFeatureInteraction(nn.Module):
    """Deformable self-attention over the three levels plus a ConvFFN, both residual (key ``cfinter``)."""

    def __init__(self, dim: int, num_heads: int, n_points: int, deform_ratio: float, cffn_ratio: float,
                 drop_path: float) -> None:
        super().__init__()
        self.query_norm = LayerNorm(dim)
        self.feat_norm = LayerNorm(dim)
        self.attn = MSDeformAttn(dim, n_levels=3, n_heads=num_heads, n_points=n_points, value_ratio=deform_ratio)
        self.ffn = ConvFFN(dim, int(dim * cffn_ratio))
        self.ffn_norm = LayerNorm(dim)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, query: Tensor, feat: Tensor, levels: Levels, ref: Tensor) -> Tensor:
        """query, feat: [B, N, C]; ref: [1, N, 1, 2] -> [B, N, C]."""
        query = query + self.attn(self.query_norm(query), ref, self.feat_norm(feat), levels)
        return query + self.drop_path(self.ffn(self.ffn_norm(query), levels))


class CTIToV(nn.Module):
    """Conv -> ViT: deformable self-attention over c + ConvFFN, resampled to stride 16, added to x via ``gamma``."""

    def __init__(self, dim: int, num_heads: int, n_points: int, deform_ratio: float, cffn_ratio: float,
                 drop_path: float, gamma_init: float = 0.0) -> None:
        super().__init__()
        self.query_norm = LayerNorm(dim)
        self.feat_norm = LayerNorm(dim)
        self.attn = MSDeformAttn(dim, n_levels=3, n_heads=num_heads, n_points=n_points, value_ratio=deform_ratio)
        self.gamma = nn.Parameter(torch.full((dim,), gamma_init))
        self.ffn = ConvFFN(dim, int(dim * cffn_ratio))
        self.ffn_norm = LayerNorm(dim)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: Tensor, c: Tensor, levels: Levels, ref: Tensor) -> Tensor:
        """x: [B, h, w, C], c: [B, N, C]; ref: [1, N, 1, 2] -> x [B, h, w, C]."""
        f = self.attn(self.query_norm(c), ref, self.feat_norm(c), levels)
        f = f + self.drop_path(self.ffn(self.ffn_norm(f), levels))
        f8, f16, f32 = split_levels(f, levels)
        size = levels[1]
        return x + self.gamma * (resize(f8, size, channels_last=True) + f16 + resize(f32, size, channels_last=True))


class CTIToC(nn.Module):
    """ViT -> conv: x is added to the stride-16 part of c, then (optionally) a ConvFFN and the feature interaction.

    ``cti_toc`` has no ConvFFN; the extra CTIs of the last interaction (``extra_CTIs``) have one. The feature
    interaction starts from the *normalised* c (``query_norm(c)``) as in the reference.
    """

    def __init__(self, dim: int, num_heads: int, n_points: int, deform_ratio: float, cffn_ratio: float,
                 drop_path: float, with_ffn: bool, cnn_feature_interaction: bool) -> None:
        super().__init__()
        self.query_norm = LayerNorm(dim)
        self.feat_norm = LayerNorm(dim)
        if with_ffn:
            self.ffn = ConvFFN(dim, int(dim * cffn_ratio))
            self.ffn_norm = LayerNorm(dim)
            self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.with_ffn = with_ffn
        self.cfinter = (CNNFeatureInteraction(dim, num_heads, n_points, deform_ratio, cffn_ratio, drop_path)
                        if cnn_feature_interaction else None)

    def forward(self, x: Tensor, c: Tensor, levels: Levels, ref: Tensor) -> Tensor:
        """x: [B, h, w, C], c: [B, N, C]; ref: [1, N, 1, 2] -> c [B, N, C]."""
        c = add_to_middle(c, x, levels)
        if self.with_ffn:
            c = c + self.drop_path(self.ffn(self.ffn_norm(c), levels))
        if self.cfinter is not None:
            c = self.cfinter(self.query_norm(c), self.feat_norm(c), levels, ref)
        return c


class Interaction(nn.Module):
    """One ViT-CoMer interaction (the reference's ``CTIBlock``) around a group of ViT blocks."""

    def __init__(
        self,
        dim: int,
        *,
        num_heads: int,
        n_points: int,
        deform_ratio: float,
        cffn_ratio: float,
        drop_path: float,
        mrfp_hidden: int,
        use_cti_tov: bool,
        use_cti_toc: bool,
        cnn_feature_interaction: bool,
        num_extra_ctis: int,
        gamma_init: float = 0.0,
    ) -> None:
        super().__init__()
        deform = dict(num_heads=num_heads, n_points=n_points, deform_ratio=deform_ratio, cffn_ratio=cffn_ratio,
                      drop_path=drop_path)
        self.cti_tov = CTIToV(dim, **deform, gamma_init=gamma_init) if use_cti_tov else None
        self.mrfp = MRFP(dim, mrfp_hidden) if use_cti_tov else None
        self.cti_toc = (CTIToC(dim, **deform, with_ffn=False, cnn_feature_interaction=cnn_feature_interaction)
                        if use_cti_toc else None)
        self.extra_CTIs = nn.ModuleList(
            CTIToC(dim, **deform, with_ffn=True, cnn_feature_interaction=cnn_feature_interaction)
            for _ in range(num_extra_ctis)
        ) if num_extra_ctis else None

    def inject(self, x: Tensor, c: Tensor, levels: Levels, ref: Tensor) -> tuple[Tensor, Tensor]:
        """Before the ViT blocks: (x [B, h, w, C], c [B, N, C]) -> (x, c)."""
        if self.cti_tov is None:
            return x, c
        c = add_to_middle(self.mrfp(c, levels), x, levels)  # MRFP replaces c (no residual)
        return self.cti_tov(x, c, levels, ref), c

    def extract(self, x: Tensor, c: Tensor, levels: Levels, ref: Tensor) -> Tensor:
        """After the ViT blocks: c [B, N, C] updated from x [B, h, w, C]."""
        if self.cti_toc is not None:
            c = self.cti_toc(x, c, levels, ref)
        for cti in self.extra_CTIs or ():
            c = cti(x, c, levels, ref)
        return c


# --- the adapter -------------------------------------------------------------------------------------------

def _init_adapter_weights(module: nn.Module) -> None:
    """The reference's init for the conv branch and interactions (before the deformable-attention reset)."""
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm | nn.BatchNorm2d):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
        fan_out = module.kernel_size[0] * module.kernel_size[1] * module.out_channels // module.groups
        nn.init.normal_(module.weight, 0.0, math.sqrt(2.0 / fan_out))
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def _per_interaction(value: bool | Sequence[bool], n: int, name: str) -> list[bool]:
    if isinstance(value, bool):
        return [value] * n
    if len(value) != n:
        raise ValueError(f"ViTCoMer: {name} has {len(value)} entries for {n} interactions")
    return [bool(v) for v in value]


class ViTCoMer(nn.Module):
    """ViT-CoMer adapter around a plain patch-16 ``ViT``: four ``D``-channel maps at strides 4, 8, 16, 32.

    The segmentation and detection code of the reference differ in three options: ``mrfp_ratio`` (MRFP hidden
    size / D; detection 0.5), ``cnn_feature_interaction`` and ``vit_feature`` ("interaction": level i gets x after
    interaction i, segmentation; "final": every level gets the final x, detection). Any input size works: the
    image is zero-padded bottom/right to a multiple of 32 and the maps are cropped back to ceil(H / stride).
    Windowed ViT blocks zero-pad q, k and v after the projection as the reference does (``zero_pad_qkv``, see
    ``Attention.forward``; False pads the tokens as ViTDet does).
    Build the ViT with ``layer_scale_init=1.0`` (ViT-CoMer's default layer scale). ``densevit.checkpoint.load_weights``
    loads an official ViT-CoMer backbone/detector/segmentor checkpoint or ViT-only weights (timm/DeiT, DINOv2, the
    reference's converted DINOv2 files; the adapter then stays at its init) into the built adapter.
    """

    default_converter: ClassVar[str] = "vit_comer"

    def __init__(
        self,
        backbone: ViT,
        *,
        interaction_indexes: Sequence[Sequence[int]] = ((0, 2), (3, 5), (6, 8), (9, 11)),
        # conv branch and interactions
        conv_inplane: int = 64,
        deform_num_heads: int = 6,
        n_points: int = 4,
        deform_ratio: float = 1.0,
        cffn_ratio: float = 0.25,
        mrfp_ratio: float = 0.5,
        drop_path_rate: float = 0.0,
        cti_gamma_init: float = 0.0,
        use_cti_tov: bool | Sequence[bool] = True,
        use_cti_toc: bool | Sequence[bool] = True,
        cnn_feature_interaction: bool | Sequence[bool] = True,
        num_extra_ctis: int = 4,
        # outputs
        add_vit_feature: bool = True,
        vit_feature: Literal["interaction", "final"] = "interaction",
        # execution
        zero_pad_qkv: bool = True,
        use_act_checkpoint: bool | None = None,
    ) -> None:
        super().__init__()
        for attr in ("embed", "blocks", "embed_dim", "patch_size"):
            if not hasattr(backbone, attr):
                raise TypeError(f"ViTCoMer needs a plain ViT backbone with `{attr}`; {type(backbone).__name__} "
                                "has none")
        if backbone.patch_size != 16:
            raise ValueError(f"ViTCoMer needs a patch-16 ViT (its tokens are the stride-16 level); "
                             f"found patch_size {backbone.patch_size}")
        depth = len(backbone.blocks)
        indexes = [tuple(int(i) for i in group) for group in interaction_indexes]
        flat = [i for group in indexes for i in (group[0], group[-1])]
        if not indexes or flat != sorted(flat) or flat[0] < 0 or flat[-1] >= depth or any(
                group[0] > group[-1] for group in indexes):
            raise ValueError(f"ViTCoMer: interaction_indexes {interaction_indexes} must be increasing, "
                             f"non-overlapping [first, last] block ranges within 0..{depth - 1}")
        if vit_feature not in ("interaction", "final"):
            raise ValueError(f"ViTCoMer: vit_feature must be 'interaction' or 'final', found {vit_feature!r}")
        if add_vit_feature and vit_feature == "interaction" and len(indexes) != 4:
            raise ValueError(f"ViTCoMer: vit_feature='interaction' adds x after interaction i to level i and "
                             f"needs 4 interactions, found {len(indexes)}")
        dim = backbone.embed_dim
        n = len(indexes)
        tov = _per_interaction(use_cti_tov, n, "use_cti_tov")
        toc = _per_interaction(use_cti_toc, n, "use_cti_toc")
        cfi = _per_interaction(cnn_feature_interaction, n, "cnn_feature_interaction")

        self.backbone = backbone
        self.interaction_indexes = indexes
        self.add_vit_feature = add_vit_feature
        self.vit_feature = vit_feature
        self.zero_pad_qkv = zero_pad_qkv
        self.use_act_checkpoint = (getattr(backbone, "use_act_checkpoint", False) if use_act_checkpoint is None
                                   else use_act_checkpoint)
        self.output_shapes = tuple(ShapeSpec(dim, s) for s in (4, 8, 16, 32))

        self.level_embed = nn.Parameter(torch.zeros(3, dim))
        self.spm = SpatialPriorModule(conv_inplane, dim)
        self.interactions = nn.ModuleList(
            Interaction(
                dim,
                num_heads=deform_num_heads,
                n_points=n_points,
                deform_ratio=deform_ratio,
                cffn_ratio=cffn_ratio,
                drop_path=drop_path_rate,  # constant inside the interactions, as in the reference
                mrfp_hidden=int(dim * mrfp_ratio),
                use_cti_tov=tov[i],
                use_cti_toc=toc[i],
                cnn_feature_interaction=cfi[i],
                num_extra_ctis=num_extra_ctis if i == n - 1 else 0,
                gamma_init=cti_gamma_init,
            )
            for i in range(n)
        )
        self.up = nn.ConvTranspose2d(dim, dim, 2, 2)
        self.norm1 = nn.BatchNorm2d(dim)
        self.norm2 = nn.BatchNorm2d(dim)
        self.norm3 = nn.BatchNorm2d(dim)
        self.norm4 = nn.BatchNorm2d(dim)

        for module in (self.up, self.spm, self.interactions):
            module.apply(_init_adapter_weights)
        for module in self.modules():
            if isinstance(module, MSDeformAttn):
                module.reset_parameters()
        nn.init.normal_(self.level_embed)

    def _checkpointed(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self.use_act_checkpoint and self.training and torch.is_grad_enabled():
            return checkpoint(fn, *args, use_reentrant=False)
        return fn(*args)


    def forward(self, x: Tensor) -> list[Tensor]:
        """x: [B, 3, H, W] -> [B, D, ceil(H / s), ceil(W / s)] maps for s = 4, 8, 16, 32."""
        in_h, in_w = x.shape[-2:]
        x = pad_to_multiple(x, 32)
        c1, c2, c3, c4 = self.spm(x)  # [B, h_s, w_s, D]
        c = merge_levels([c2 + self.level_embed[0], c3 + self.level_embed[1], c4 + self.level_embed[2]])
        x = self.backbone.embed(x)  # [B, h, w, D], stride 16
        levels = token_levels(x.shape[1], x.shape[2])
        ref = reference_points(levels, device=x.device)

        vit_maps = []
        for interaction, (first, last) in zip(self.interactions, self.interaction_indexes, strict=True):
            x, c = self._checkpointed(interaction.inject, x, c, levels, ref)
            for block in self.backbone.blocks[first:last + 1]:
                x = self._checkpointed(partial(block, zero_pad_qkv=self.zero_pad_qkv), x)
            c = self._checkpointed(interaction.extract, x, c, levels, ref)
            vit_maps.append(x)

        c2, c3, c4 = (m.permute(0, 3, 1, 2) for m in split_levels(c, levels))  # NCHW views
        c1 = self.up(c2) + c1.permute(0, 3, 1, 2)
        maps = [c1, c2, c3, c4]
        if self.add_vit_feature:
            sources = vit_maps if self.vit_feature == "interaction" else [x] * 4
            maps = [m + resize(v.permute(0, 3, 1, 2), m.shape[-2:]) for m, v in zip(maps, sources, strict=True)]
        norms = (self.norm1, self.norm2, self.norm3, self.norm4)
        # Crop the padding away before the norms so that training statistics only see the image.
        return [norm(m[..., : math.ceil(in_h / s), : math.ceil(in_w / s)])
                for norm, m, s in zip(norms, maps, (4, 8, 16, 32), strict=True)]


# --- sizes -------------------------------------------------------------------------------------------------

# The paper's backbones: ViT size (``VIT_SIZES``), deformable heads / value ratio, drop path, MRFP hidden ratio of
# the segmentation code (the detection code always uses 0.5).
VIT_COMER_SIZES: dict[str, dict[str, Any]] = {
    "tiny": dict(VIT_SIZES["tiny"], deform_num_heads=6, deform_ratio=1.0, drop_path_rate=0.1, seg_mrfp_ratio=6.0),
    "small": dict(VIT_SIZES["small"], deform_num_heads=6, deform_ratio=1.0, drop_path_rate=0.2, seg_mrfp_ratio=1.5),
    "base": dict(VIT_SIZES["base"], deform_num_heads=12, deform_ratio=0.5, drop_path_rate=0.3, seg_mrfp_ratio=1.0),
    "large": dict(VIT_SIZES["large"], deform_num_heads=16, deform_ratio=0.5, drop_path_rate=0.4, seg_mrfp_ratio=1.0,
                  interaction_indexes=((0, 5), (6, 11), (12, 17), (18, 23))),
}


def build_vit_comer(size: str, task: Literal["segmentation", "detection"] = "segmentation",
                    pretrain_img_size: int = 224, window_size: int = 0, **overrides: Any) -> ViTCoMer:
    """The paper's ViT-CoMer-{tiny,small,base,large} (ViT + adapter) for ``task``; ``overrides`` go to the adapter.

    Detection with DINOv2 uses ``pretrain_img_size=592`` and ``window_size=14`` (global blocks 2, 5, 8, 11, ...).
    """
    if size not in VIT_COMER_SIZES:
        raise ValueError(f"build_vit_comer: unknown size {size!r}; known sizes: {', '.join(VIT_COMER_SIZES)}")
    if task not in ("segmentation", "detection"):
        raise ValueError(f"build_vit_comer: task must be 'segmentation' or 'detection', found {task!r}")
    spec = dict(VIT_COMER_SIZES[size])
    depth = spec["depth"]
    windowed = tuple(i for i in range(depth) if (i + 1) % (depth // 4)) if window_size else ()
    vit = ViT(img_size=pretrain_img_size, pretrain_img_size=pretrain_img_size, embed_dim=spec["embed_dim"],
              depth=depth, num_heads=spec["num_heads"], drop_path_rate=spec["drop_path_rate"],
              window_size=window_size, window_block_indexes=windowed, layer_scale_init=1.0)
    adapter = dict(
        deform_num_heads=spec["deform_num_heads"],
        deform_ratio=spec["deform_ratio"],
        drop_path_rate=spec["drop_path_rate"],
        mrfp_ratio=spec["seg_mrfp_ratio"] if task == "segmentation" else 0.5,
        vit_feature="interaction" if task == "segmentation" else "final",
    )
    if "interaction_indexes" in spec:
        adapter["interaction_indexes"] = spec["interaction_indexes"]
    return ViTCoMer(vit, **{**adapter, **overrides})

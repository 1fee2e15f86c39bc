"""Tiny multi-scale feature extractors, one per backbone x adapter pair, as the configs compose them.

Shared by the head and task-model tests so that every head runs on every adapter. ``top_level`` adds the
stride-64 level the detectors need (simple pyramid's p6, FPN's extra pool); segmentation and depth take 4-32.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from densevit.adapters.fpn import FPN
from densevit.adapters.simple_pyramid import SimpleFeaturePyramid
from densevit.adapters.stvit_r import STViTR
from densevit.backbones.hybrid_vit import HybridViT
from densevit.backbones.swin import SwinTransformer
from densevit.backbones.swin_stvit_r import SwinSTViTR
from densevit.backbones.timm_backbone import TimmBackbone
from densevit.backbones.vit import ViT


def tiny_vit(**kwargs) -> ViT:
    """A 2-block, 64-wide ViT for 64 px images."""
    return ViT(**{"img_size": 64, "embed_dim": 64, "depth": 2, "num_heads": 2, **kwargs})


def tiny_vit_comer() -> nn.Module:
    """ViT-CoMer (detection layout: the final ViT map on every level), one interaction per block."""
    from densevit.adapters.vit_comer import ViTCoMer  # deformable attention: imported only where used

    return ViTCoMer(tiny_vit(layer_scale_init=1.0), interaction_indexes=((0, 0), (1, 1)), conv_inplane=16,
                    deform_num_heads=2, vit_feature="final")


def tiny_stvit_r() -> STViTR:
    """STViT-R on a 4-block ViT: image, init, global, recover."""
    return STViTR(tiny_vit(depth=4), roles=("image", "init", "global", "recover"), window=2, pooled=1,
                  init_kernel=4, recover_kernel=3)


def tiny_pyramids(width: int, top_level: bool = True) -> dict[str, Callable[[], nn.Module]]:
    """Name -> builder of a ``width``-channel pyramid at strides 4-32 (and 64 with ``top_level``)."""
    return {
        "vit+simple_pyramid": lambda: SimpleFeaturePyramid(tiny_vit(), width, top_block=top_level),
        "hybrid_vit+simple_pyramid": lambda: SimpleFeaturePyramid(
            HybridViT(img_size=64, embed_dim=64, depth=2, num_heads=2, stem_widths=(8, 16, 32, 64),
                      stem_out_indices=(1, 2)),
            width, top_block=top_level),
        "stvit_r+simple_pyramid": lambda: SimpleFeaturePyramid(tiny_stvit_r(), width, top_block=top_level),
        "vit_comer+fpn": lambda: FPN(tiny_vit_comer(), width, extra_pool=top_level),
        "swin+fpn": lambda: FPN(SwinTransformer(embed_dim=16, depths=(1, 1, 2, 1), num_heads=(1, 2, 4, 8)),
                                width, extra_pool=top_level),
        "stvit_r_swin+fpn": lambda: FPN(SwinSTViTR(embed_dim=16, depths=(1, 1, 18, 1), num_heads=(1, 2, 4, 8)),
                                        width, extra_pool=top_level),
        "timm_resnet18+fpn": lambda: FPN(TimmBackbone("resnet18", out_indices=(1, 2, 3, 4)), width,
                                         extra_pool=top_level),
    }

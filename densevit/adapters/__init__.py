"""Adapters: turn a backbone's maps into the multi-scale pyramid a task head needs."""

from densevit.adapters.fpn import FPN
from densevit.adapters.simple_pyramid import SimpleFeaturePyramid
from densevit.adapters.stvit_r import STViTR
from densevit.adapters.vit_comer import ViTCoMer, build_vit_comer

__all__ = ["FPN", "STViTR", "SimpleFeaturePyramid", "ViTCoMer", "build_vit_comer"]

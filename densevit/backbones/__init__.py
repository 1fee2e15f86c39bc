"""Backbones: the plain ViT (timm key layout), Swin, STViT-R Swin and any timm feature model."""

from densevit.backbones.swin import SwinTransformer
from densevit.backbones.swin_stvit_r import SwinSTViTR
from densevit.backbones.timm_backbone import TimmBackbone
from densevit.backbones.vit import ViT

__all__ = ["SwinSTViTR", "SwinTransformer", "TimmBackbone", "ViT"]

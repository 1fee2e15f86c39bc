"""Backbones: the plain ViT (timm key layout), ViTPose's ViT, a ViT with a convolutional stem, Swin, STViT-R, timm."""

from densevit.backbones.hybrid_vit import HybridViT
from densevit.backbones.interface import ShapeSpec
from densevit.backbones.swin import SwinTransformer
from densevit.backbones.swin_stvit_r import SwinSTViTR
from densevit.backbones.timm_backbone import TimmBackbone
from densevit.backbones.vit import ViT
from densevit.backbones.vitpose import ViTPoseBackbone

__all__ = ["HybridViT", "ShapeSpec", "SwinSTViTR", "SwinTransformer", "TimmBackbone", "ViT", "ViTPoseBackbone"]

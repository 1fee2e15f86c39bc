"""ViTDet's R-CNN heads, assembled from torchvision's detection components.

ViTDet changes the standard FPN Mask R-CNN heads in three places: a 2-conv RPN head, a 4conv-1fc box head and a
4-conv mask head whose convs are followed by a channel LayerNorm (ViTDet, Li et al. 2022; detectron2 projects/ViTDet).
"""

from __future__ import annotations

from torch import nn
from torchvision.models.detection.faster_rcnn import FastRCNNConvFCHead, FastRCNNPredictor
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.models.detection.rpn import RPNHead

from densevit.layers import LayerNorm2d

__all__ = ["box_head", "box_predictor", "mask_head", "mask_predictor", "rpn_head"]


def rpn_head(in_channels: int = 256, num_anchors: int = 3, num_convs: int = 2) -> RPNHead:
    """RPN head: ``num_convs`` 3x3 convs + ReLU, then objectness and box-delta 1x1 convs."""
    return RPNHead(in_channels, num_anchors, conv_depth=num_convs)


def box_head(
    in_channels: int = 256, pool_size: int = 7, conv_dim: int = 256, num_convs: int = 4, fc_dim: int = 1024
) -> FastRCNNConvFCHead:
    """Box head: ``num_convs`` x (3x3 conv, LayerNorm, ReLU) then one fc layer (ViTDet's 4conv1fc)."""
    return FastRCNNConvFCHead(
        (in_channels, pool_size, pool_size), [conv_dim] * num_convs, [fc_dim], norm_layer=LayerNorm2d
    )


def box_predictor(in_channels: int = 1024, num_classes: int = 80, class_agnostic: bool = False) -> FastRCNNPredictor:
    """Class scores (``num_classes`` + background) and box deltas: one set per class, or with ``class_agnostic`` one
    set for all classes (``bbox_pred`` outputs 4 values; Cascade R-CNN's stages)."""
    predictor = FastRCNNPredictor(in_channels, num_classes + 1)
    if class_agnostic:
        predictor.bbox_pred = nn.Linear(in_channels, 4)
    return predictor


def mask_head(in_channels: int = 256, conv_dim: int = 256, num_convs: int = 4) -> MaskRCNNHeads:
    """Mask head: ``num_convs`` x (3x3 conv, LayerNorm, ReLU)."""
    return MaskRCNNHeads(in_channels, [conv_dim] * num_convs, 1, norm_layer=LayerNorm2d)


def mask_predictor(in_channels: int = 256, conv_dim: int = 256, num_classes: int = 80) -> nn.Module:
    """2x deconv + ReLU, then one mask logit map per class (background included, as torchvision indexes it)."""
    return MaskRCNNPredictor(in_channels, conv_dim, num_classes + 1)

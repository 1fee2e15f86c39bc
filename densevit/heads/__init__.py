"""Task heads: R-CNN parts, UperNet, FCN/MLP segmentation heads, DPT, the restoration decoder, pose heatmap heads."""

from densevit.heads.dpt import DPTHead
from densevit.heads.pose import ClassicPoseHead, PyramidPoseHead, SimplePoseHead
from densevit.heads.rcnn import box_head, box_predictor, mask_head, mask_predictor, rpn_head
from densevit.heads.restoration import RestorationHead
from densevit.heads.seg_heads import FCNHead, MLPHead
from densevit.heads.uper import UPerHead

__all__ = [
    "ClassicPoseHead",
    "DPTHead",
    "FCNHead",
    "MLPHead",
    "PyramidPoseHead",
    "RestorationHead",
    "SimplePoseHead",
    "UPerHead",
    "box_head",
    "box_predictor",
    "mask_head",
    "mask_predictor",
    "rpn_head",
]

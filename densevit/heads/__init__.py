"""Task heads: R-CNN parts, UperNet, FCN/MLP segmentation heads, DPT, the restoration decoder."""

from densevit.heads.dpt import DPTHead
from densevit.heads.rcnn import box_head, box_predictor, mask_head, mask_predictor, rpn_head
from densevit.heads.restoration import RestorationHead
from densevit.heads.seg_heads import FCNHead, MLPHead
from densevit.heads.uper import UPerHead

__all__ = [
    "DPTHead",
    "FCNHead",
    "MLPHead",
    "RestorationHead",
    "UPerHead",
    "box_head",
    "box_predictor",
    "mask_head",
    "mask_predictor",
    "rpn_head",
]

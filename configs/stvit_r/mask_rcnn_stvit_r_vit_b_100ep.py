"""STViT-R on ViTDet-B: Mask R-CNN, MAE init, COCO, the ViTDet 100-epoch recipe at 1024 (ViTDet, Li et al. 2022;
detectron2 projects/ViTDet).

The authors released no plain-ViT variant, so the detector recipe is ViTDet's. Blocks 0-2 and 9-11 run on the
64x64 image tokens; blocks 3-8 form one dumbbell unit with the paper's geometry (7x7 windows pooled to 3x3,
key/value regions 14 and 27): init 3, local 4, global 5, local 6, global 7, recover 8, every role reusing the
MAE weights of its block. Backbone FLOPs at 1024x1024: 966 G -> 625 G (-35%, tools/benchmark_stvit.py).
"""

from mmengine.config import read_base

from densevit.adapters.stvit_r import STViTR

with read_base():
    from ..vitdet.mask_rcnn_vit_b_100ep import *

model.backbone.backbone = dict(
    type=STViTR,
    vit=model.backbone.backbone,
    roles=("image",) * 3 + ("init", "local", "global", "local", "global", "recover") + ("image",) * 3,
    window=7,
    pooled=3,
    init_kernel=14,
    refine_kernel=21,
    recover_kernel=27,
    pad_mask="valid",
)

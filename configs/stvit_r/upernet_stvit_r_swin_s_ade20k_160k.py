"""UperNet on STViT-R-Swin-S, ADE20K, 160k iterations, 512 crops (the paper reports 48.3 mIoU).

The spec (stvit_r.md) gives no segmentation hyperparameters for STViT-R, and tasks.md has no Swin recipe; this uses
tasks.md's ADE20K UperNet schedule (ViT-CoMer's): batch 16, AdamW lr 6e-5, weight decay 0.01 (none on norms and
relative position tables), poly lr after 1500 linear warm-up iterations, slide test 512 / 341; no layer-wise lr
decay (densevit defines it over plain-ViT blocks only). Backbone as in the Mask R-CNN config (released ImageNet init,
drop path 0.2); its four maps (strides 4-32) feed UperNet directly and the stride-16 map the auxiliary FCN head.
Data, evaluation and schedule come from the plain-ViT UperNet config.
"""

from mmengine.config import read_base
from torch.optim import AdamW

from densevit.backbones.swin_stvit_r import SwinSTViTR

with read_base():
    from ..upernet.upernet_vit_b_sfp_ade20k_160k import *

model.backbone = dict(
    type=SwinSTViTR,
    embed_dim=96,
    depths=(2, 2, 18, 2),
    num_heads=(3, 6, 12, 24),
    window_size=7,
    drop_path_rate=0.2,
    # stage 3: (image, init 14, refine 21, local, global, recover 27) x 3, windows pooled 7x7 -> 3x3
    pooled=3,
    init_kernel=14,
    refine_kernel=21,
    recover_kernel=27,
    layer_scale_init=1e-5,
    pad_mask="released",
    pretrained="checkpoints/STViT-R-Swin-S.pth",
)
model.decode_head.update(in_channels=(96, 192, 384, 768))
model.aux_head.update(in_channels=384)
optimizer = dict(
    type=AdamW, lr=6e-5, betas=(0.9, 0.999), weight_decay=0.01, no_decay_names=("relative_position_bias_table",)
)

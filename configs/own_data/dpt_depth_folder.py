"""Monocular depth on your own folder of images and depth PNGs: the quickstart depth model, your files.

Layout: <data_root>/images/{train,val}/<name>.jpg and <data_root>/depth/{train,val}/<name>.png, 16-bit depth in
units of 1 / depth_scale metres (1000: millimetres, as NYUv2 stores them; 0 = no measurement). Set max_depth to
the farthest depth you care about. See docs/own_data.md.
"""

from mmengine.config import read_base

from densevit.datasets.nyu import DepthFolder

with read_base():
    from ..quickstart.dpt_vit_tiny_demo import *

data_root = "data/my_depth"
depth_scale = 1000.0  # PNG value per metre

train_dataloader.dataset = dict(type=DepthFolder, img_dir=f"{data_root}/images/train",
                                depth_dir=f"{data_root}/depth/train", depth_scale=depth_scale,
                                transforms=train_dataloader.dataset.transforms)
val_dataloader.dataset = dict(type=DepthFolder, img_dir=f"{data_root}/images/val", depth_dir=f"{data_root}/depth/val",
                              depth_scale=depth_scale)
test_dataloader, test_evaluator = val_dataloader, val_evaluator

"""Semantic segmentation on your own folder of images and label PNGs: the quickstart segmentor, your classes.

Layout: <data_root>/images/{train,val}/<name>.jpg and <data_root>/labels/{train,val}/<name>.png, one class index
per pixel (0..len(classes)-1, 255 = not labelled; palette PNGs are read as their indices). See docs/own_data.md.
"""

from mmengine.config import read_base

with read_base():
    from ..quickstart.upernet_vit_tiny_demo import *

data_root = "data/my_labels"
classes = ("background", "road", "building")  # class k is label value k

train_dataloader.dataset.update(img_dir=f"{data_root}/images/train", ann_dir=f"{data_root}/labels/train",
                                classes=classes)
val_dataloader.dataset.update(img_dir=f"{data_root}/images/val", ann_dir=f"{data_root}/labels/val", classes=classes)
val_evaluator.update(class_names=classes)
test_dataloader, test_evaluator = val_dataloader, val_evaluator
model.decode_head.update(num_classes=len(classes))
model.aux_head.update(num_classes=len(classes))

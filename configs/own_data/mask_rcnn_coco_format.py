"""Detection and instance segmentation on your own COCO-format set: the quickstart detector, your files.

Layout: <data_root>/train/*.jpg, <data_root>/val/*.jpg, <data_root>/annotations/{train,val}.json (COCO format:
images, annotations with bbox and segmentation, categories). Images are resized to 256 px as in the quickstart.
Training checks that num_classes equals the number of categories in the files. See docs/own_data.md.
"""

from mmengine.config import read_base

with read_base():
    from ..quickstart.mask_rcnn_vit_tiny_demo import *

data_root = "data/my_coco"
num_classes = 3  # the categories in your annotation files

train_dataloader.dataset.update(ann_file=f"{data_root}/annotations/train.json", img_dir=f"{data_root}/train")
val_dataloader.dataset.update(ann_file=f"{data_root}/annotations/val.json", img_dir=f"{data_root}/val")
val_evaluator.update(ann_file=f"{data_root}/annotations/val.json")
test_dataloader, test_evaluator = val_dataloader, val_evaluator
model.update(num_classes=num_classes)
model.box_predictor_module.update(num_classes=num_classes)
model.mask_predictor_module.update(num_classes=num_classes)

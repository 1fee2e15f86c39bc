"""ADE20K (SceneParsing, 150 classes): 512x512 training crops, mIoU on the 2,000 validation images.

Layout: data/ade/ADEChallengeData2016/{images,annotations}/{training,validation}. Training: mmsegmentation's
pipeline (resize to fit 2048x512 keeping the aspect ratio, times a random 0.5-2.0; a 512 crop with at most 75%
of one class; flip; photometric distortion). Validation labels stay at the original size; the model resizes its
logits to them.
"""

from mmengine.dataset import DefaultSampler

from densevit.datasets.ade20k import ADE20K, ADE20K_CLASSES
from densevit.datasets.seg_transforms import seg_train_transforms
from densevit.engine.stream import ResumableInfiniteSampler
from densevit.evaluation.segmentation import SegmentationEvaluator

data_root = "data/ade/ADEChallengeData2016"
crop_size = 512
num_classes = 150

train_dataloader = dict(
    batch_size=2,  # per GPU; 8 GPUs give the batch of 16
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type=ResumableInfiniteSampler, shuffle=True),
    dataset=dict(
        type=ADE20K,
        data_root=data_root,
        split="training",
        transforms=dict(type=seg_train_transforms, scale=(2048, 512), ratio_range=(0.5, 2.0), crop_size=crop_size,
                        cat_max_ratio=0.75),
    ),
)
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    sampler=dict(type=DefaultSampler, shuffle=False),
    dataset=dict(type=ADE20K, data_root=data_root, split="validation"),
)
val_evaluator = dict(type=SegmentationEvaluator, class_names=ADE20K_CLASSES)
test_dataloader = val_dataloader
test_evaluator = val_evaluator

"""NYU Depth v2, BTS split: 24,231 training frames, 654 test images at 480x640, depths capped at 10 m.

Layout: data/nyu/<scene>/rgb_XXXXX.jpg, data/nyu/<scene>/sync_depth_XXXXX.png, data/nyu/nyu_{train,test}.txt.
Metrics inside Eigen's crop, as the depth literature reports them.
"""

from mmengine.dataset import DefaultSampler

from densevit.datasets.depth_transforms import depth_train_transforms
from densevit.datasets.nyu import NYUDepth
from densevit.engine.stream import ResumableInfiniteSampler
from densevit.evaluation.depth import DepthEvaluator

data_root = "data/nyu"
min_depth, max_depth = 1e-3, 10.0

train_dataloader = dict(
    batch_size=2,  # per GPU; 8 GPUs give the reference batch of 16
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type=ResumableInfiniteSampler, shuffle=True),
    dataset=dict(
        type=NYUDepth,
        data_root=data_root,
        split_file=f"{data_root}/nyu_train.txt",
        transforms=dict(type=depth_train_transforms, crop_size=(416, 544)),  # NYU crop, rotate, flip, colour
    ),
)
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    sampler=dict(type=DefaultSampler, shuffle=False),
    dataset=dict(type=NYUDepth, data_root=data_root, split_file=f"{data_root}/nyu_test.txt"),
)
val_evaluator = dict(type=DepthEvaluator, min_depth=min_depth, max_depth=max_depth, crop="eigen")
test_dataloader = val_dataloader
test_evaluator = val_evaluator

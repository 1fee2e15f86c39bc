"""The loaders of the built-in demo data: batches of 8 on one worker (a 2-core CPU). Each demo dataset imports
them and adds its dataset; generate the data first: python -m densevit.datasets.demo data/demo
"""

from mmengine.dataset import DefaultSampler

from densevit.engine.stream import ResumableInfiniteSampler

data_root = "data/demo"

train_dataloader = dict(
    batch_size=8,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type=ResumableInfiniteSampler, shuffle=True),
)
val_dataloader = dict(
    batch_size=8,
    num_workers=1,
    sampler=dict(type=DefaultSampler, shuffle=False),
)

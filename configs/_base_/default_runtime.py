"""Runtime shared by every config: the hooks every run has and the seed.

The seed is set before the model is built, so it fixes the initial weights as well as the data order
(densevit.engine.runner.build_runner). The environment (cuDNN, worker start method, distributed backend) is
set by the runner, not by configs. A method config sets the checkpoint interval: the schedules under
schedules/ hold only the schedule's keys, so that a variant can import another schedule over its base.
"""

from mmengine.hooks import CheckpointHook, LoggerHook

default_hooks = dict(
    checkpoint=dict(type=CheckpointHook, by_epoch=False, max_keep_ckpts=3),  # every run counts iterations
    logger=dict(type=LoggerHook, interval=50),
)
randomness = dict(seed=0)

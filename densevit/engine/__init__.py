"""Engine glue on mmengine: batching, the task-model wrapper, optimiser groups, metrics and the Runner."""

from densevit.engine.data import DataPreprocessor, collate
from densevit.engine.model import RunnerModel

__all__ = ["DataPreprocessor", "RunnerModel", "collate"]

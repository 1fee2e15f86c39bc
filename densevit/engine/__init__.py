"""Engine glue on mmengine: batching, optimiser groups, metrics and the Runner."""

from densevit.engine.data import DataPreprocessor, collate

__all__ = ["DataPreprocessor", "collate"]

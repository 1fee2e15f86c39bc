"""Engine glue on mmengine: batching, the task-model wrapper, optimiser groups, metrics and the Runner."""

from densevit.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "data": ("DataPreprocessor", "collate"),
    "model": ("RunnerModel",),
})

"""mmengine glue for densevit's plain evaluators."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from mmengine.evaluator import BaseMetric

__all__ = ["MetricAdapter", "SampleHook"]


class MetricAdapter(BaseMetric):
    """Runs a densevit evaluator (``process``/``compute``) inside mmengine's loops, distributed included."""

    default_prefix = ""  # metric names are the evaluator's own (e.g. bbox_AP, mIoU)

    def __init__(self, evaluator: Any, collect_device: str = "cpu") -> None:
        super().__init__(collect_device=collect_device)
        self.evaluator = evaluator

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        """Keep one small record per image (predictions themselves are dropped)."""
        for sample in data_samples:
            self.results.append(self.evaluator.process(_to_cpu(sample)))

    def compute_metrics(self, results: list) -> dict[str, float]:
        """Evaluate all records of the split."""
        return self.evaluator.compute(results)


class SampleHook(BaseMetric):
    """Hands every predicted sample (on the CPU) to ``fn``, in the process that predicted it, and reports no metric:
    beside the evaluator in mmengine's loop, it sees exactly what the evaluator scores (a tool saves or draws it)."""

    def __init__(self, fn: Callable[[dict], None]) -> None:
        super().__init__()
        self.fn = fn

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        """Call ``fn`` on each sample of the batch."""
        for sample in data_samples:
            self.fn(_to_cpu(sample))

    def compute_metrics(self, results: list) -> dict[str, float]:
        """No metric."""
        return {}

    def evaluate(self, size: int) -> dict[str, float]:
        """No metric, and nothing to gather from the processes."""
        return {}


def _to_cpu(sample: dict) -> dict:
    return {k: v.cpu() if hasattr(v, "cpu") else v for k, v in sample.items()}

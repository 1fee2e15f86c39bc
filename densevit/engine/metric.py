"""mmengine glue for densevit's plain evaluators."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mmengine.evaluator import BaseMetric

__all__ = ["MetricAdapter"]


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


def _to_cpu(sample: dict) -> dict:
    return {k: v.cpu() if hasattr(v, "cpu") else v for k, v in sample.items()}

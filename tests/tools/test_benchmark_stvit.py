"""tools/benchmark_stvit.py on tiny backbones: FLOPs and times of both models, forward, bf16 and training steps."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

TOOL = runpy.run_path(str(Path(__file__).resolve().parents[2] / "tools" / "benchmark_stvit.py"))
TINY = {"swin-s": dict(embed_dim=16, depths=(1, 1, 6, 1), num_heads=(1, 2, 4, 8)),
        "vit-b": dict(embed_dim=32, num_heads=2, img_size=64)}

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("name", sorted(TINY))
@pytest.mark.parametrize(("amp", "train"), [(None, False), ("bf16", False), (None, True)])
def test_measure_pair_counts_and_times_both_models(name, amp, train):
    result = TOOL["measure_pair"](name, (64, 96), 2, amp=amp, train=train, **TINY[name])
    assert set(result.times) == {"plain", "stvit-r"} and all(len(t) == 2 for t in result.times.values())
    assert all(v > 0 for t in result.times.values() for v in t)
    assert all(f > 0 for f in result.flops.values())
    assert all(p > 0 for p in result.params.values())
    assert result.ratio() > 0 and result.paired_ratio() > 0 and result.min_ratio() > 0

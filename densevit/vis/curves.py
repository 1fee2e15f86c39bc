"""Training curves: the scalars mmengine logged in a work dir, stitched across resumed runs, against the iteration."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

__all__ = ["plot_loss_curves", "read_scalars"]

Series = dict[str, tuple[list[int], list[float]]]


def read_scalars(work_dir: str | Path) -> Series:
    """Every scalar logged by the runs in ``work_dir`` (one folder per start, each with ``vis_data/scalars.json``)
    -> ``{name: (steps, values)}``, runs taken in the order they started; a resumed run's steps replace the
    ones it repeats."""
    files = sorted(Path(work_dir).glob("*/vis_data/scalars.json"), key=lambda f: f.stat().st_mtime)
    by_name: dict[str, dict[int, float]] = {}
    for file in files:
        for line in file.read_text().splitlines():
            record = json.loads(line)
            step = record.pop("step", None)
            if step is None:
                continue
            for name, value in record.items():
                if isinstance(value, int | float):
                    by_name.setdefault(name, {})[int(step)] = float(value)
    return {name: (sorted(values), [values[s] for s in sorted(values)]) for name, values in by_name.items()}


def plot_loss_curves(work_dir: str | Path, out_png: str | Path, keys: Sequence[str] | None = None) -> Path | None:
    """Plot the losses (or ``keys``) logged in ``work_dir`` against the iteration; None when nothing was logged."""
    series = {k: v for k, v in read_scalars(work_dir).items() if (k in keys if keys else k.startswith("loss"))}
    if not series:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for name, (steps, values) in sorted(series.items()):
        ax.plot(steps, values, label=name, lw=1.2 if name == "loss" else 0.8, marker="o" if len(steps) == 1 else None)
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return Path(out_png)

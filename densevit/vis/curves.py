"""Training curves: the losses mmengine logged, plotted against the iteration."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

__all__ = ["plot_loss_curves"]


def plot_loss_curves(scalars_json: str | Path, out_png: str | Path, keys: Sequence[str] | None = None) -> Path:
    """Plot the losses mmengine logged (``vis_data/scalars.json``) against the iteration; returns the PNG path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: dict[str, tuple[list, list]] = {}
    for line in Path(scalars_json).read_text().splitlines():
        rec = json.loads(line)
        if "step" not in rec:
            continue
        for k, v in rec.items():
            if (keys is None and k.startswith("loss")) or (keys is not None and k in keys):
                series.setdefault(k, ([], []))
                series[k][0].append(rec["step"])
                series[k][1].append(v)
    fig, ax = plt.subplots(figsize=(7, 4))
    for k, (x, y) in sorted(series.items()):
        ax.plot(x, y, label=k, lw=1.2 if k == "loss" else 0.8)
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return Path(out_png)

"""Loss and metric curves of one or several training runs in one figure, and a table of their best / last metrics.

    python tools/analyze_logs.py work_dirs/a work_dirs/b --out curves.png [--keys loss bbox_AP] [--names A B]

Each WORK_DIR is a training work dir: one folder per start of the run, each with the scalars mmengine logged
(``*/vis_data/scalars.json``). A resumed run's folders are stitched together by iteration, a later start replacing
the iterations it repeats (``densevit.vis.curves.read_scalars``). The left panel shows the losses (the total
``loss`` of every run; with one run every ``loss*`` term), the right panel the evaluation metrics (every other
scalar but the learning rate, timings and memory); ``--keys`` picks the curves instead. A run with a single logged
point is drawn as a marker; a run with nothing logged is named and skipped. The table gives, per run and metric,
the best value (lowest for errors and losses: names with loss, abs_rel, sq_rel, rmse, log10, silog, err) and the
last one, with their iterations.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from densevit.evaluation.table import format_table
from densevit.vis.curves import Series, read_scalars

NOT_CURVES = {"lr", "base_lr", "time", "data_time", "iter", "epoch", "memory"}  # bookkeeping, not results
LOWER_IS_BETTER = ("loss", "abs_rel", "sq_rel", "rmse", "log10", "silog", "err")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("work_dirs", nargs="+", type=Path, help="training work dirs (one per run)")
    parser.add_argument("--out", type=Path, required=True, help="the figure (.png)")
    parser.add_argument("--keys", nargs="+", help="scalars to draw (default: losses and metrics)")
    parser.add_argument("--names", nargs="+", help="a legend name per work dir (default: the folder names)")
    args = parser.parse_args()
    if args.names and len(args.names) != len(args.work_dirs):
        parser.error(f"--names gives {len(args.names)} names for {len(args.work_dirs)} work dirs")
    return args


def is_loss(name: str) -> bool:
    return name.startswith("loss")


def lower_is_better(name: str) -> bool:
    return any(word in name.lower() for word in LOWER_IS_BETTER)


def best_and_last(name: str, steps: list[int], values: list[float]) -> tuple[str, str]:
    pick = min if lower_is_better(name) else max
    best = pick(range(len(values)), key=values.__getitem__)
    return f"{values[best]:.4g} @ {steps[best]}", f"{values[-1]:.4g} @ {steps[-1]}"


def plot(runs: dict[str, Series], keys: list[str] | None, out: Path) -> None:
    """Losses on the left (log scale), metrics on the right; one colour per run, one line style per scalar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (loss_ax, metric_ax) = plt.subplots(1, 2, figsize=(13, 4.5))
    styles = ["-", "--", ":", "-."]
    for colour, (run, series) in enumerate(runs.items()):
        if keys:
            names = [k for k in keys if k in series]
        else:
            losses = [k for k in series if is_loss(k) and (len(runs) == 1 or k == "loss")]
            names = losses + [k for k in series if not is_loss(k) and k not in NOT_CURVES]
        for ax, in_panel in ((loss_ax, is_loss), (metric_ax, lambda k: not is_loss(k))):
            for i, name in enumerate(sorted(filter(in_panel, names))):
                steps, values = series[name]
                # evaluations are sparse: every one gets a marker (and a lone point would draw nothing without one)
                marker = "o" if len(steps) == 1 or ax is metric_ax else None
                ax.plot(steps, values, color=f"C{colour % 10}", ls=styles[i % len(styles)], lw=1.0, marker=marker,
                        ms=4, label=f"{run}: {name}" if len(runs) > 1 else name)
    for ax, title in ((loss_ax, "losses"), (metric_ax, "metrics")):
        ax.set_title(title)
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=7)
        else:
            ax.text(0.5, 0.5, f"no {title} logged", ha="center", va="center", transform=ax.transAxes)
    if loss_ax.lines:
        loss_ax.set_yscale("log")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main() -> None:
    args = parse_args()
    names = args.names or [d.name for d in args.work_dirs]
    runs: dict[str, Series] = {}
    for name, work_dir in zip(names, args.work_dirs, strict=True):
        if not work_dir.is_dir():
            raise SystemExit(f"work dir {work_dir} does not exist")
        series = read_scalars(work_dir)
        if not series:
            print(f"{work_dir}: nothing logged (no */vis_data/scalars.json with a step); skipped")
            continue
        runs[name] = series
    if not runs:
        raise SystemExit("none of the work dirs has logged scalars: nothing to draw")
    rows = []
    for run, series in runs.items():
        for key in sorted(k for k in series if k not in NOT_CURVES and (not args.keys or k in args.keys)):
            steps, values = series[key]
            rows.append([run, key, *best_and_last(key, steps, values), len(steps)])
    print(format_table(["run", "scalar", "best @ iteration", "last @ iteration", "points"], rows))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    plot(runs, args.keys, args.out)
    print(f"curves of {len(runs)} run(s) written to {args.out}")


if __name__ == "__main__":
    main()

"""Evaluate a checkpoint: python tools/test.py CONFIG CHECKPOINT [--work-dir DIR]; writes metrics.json."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from mmengine.config import DictAction


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("config", help="config file the checkpoint was trained with")
    parser.add_argument("checkpoint", help="checkpoint file (.pth)")
    parser.add_argument("--work-dir", help="where metrics.json and logs go (default: work_dirs/<config name>/test)")
    parser.add_argument("--cfg-options", nargs="+", action=DictAction, help="override config keys: key=value")
    parser.add_argument("--launcher", choices=["none", "pytorch", "slurm"], default="none")
    parser.add_argument("--local-rank", "--local_rank", type=int, default=0)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    # imported after parsing, so that --help answers at once (torch alone takes seconds to import)
    from densevit.config import load_config
    from densevit.engine.runner import build_runner

    if not Path(args.checkpoint).is_file():
        raise SystemExit(f"checkpoint {args.checkpoint} does not exist")
    cfg = load_config(args.config, args.cfg_options)
    work_dir = Path(args.work_dir or Path("work_dirs") / Path(args.config).stem / "test")
    runner = build_runner(cfg, work_dir=work_dir, load_from=args.checkpoint, launcher=args.launcher, train=False)
    metrics = runner.test()
    if runner.rank == 0:
        out = work_dir / "metrics.json"
        # JSON has no NaN: a metric without data (e.g. APl when no object is large) is written as null; text (the
        # restoration evaluator's scoring convention) is kept as it is
        values = {k: v if isinstance(v, str) else float(v) if math.isfinite(float(v)) else None
                  for k, v in metrics.items()}
        out.write_text(json.dumps(values, indent=2, allow_nan=False))
        print(f"metrics written to {out}")


if __name__ == "__main__":
    main()

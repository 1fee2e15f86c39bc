"""Train a model from a config: densevit-train (or python tools/train.py) CONFIG [--work-dir DIR] [--resume [CKPT]]
[--amp]."""

from __future__ import annotations

import argparse
from pathlib import Path

from mmengine.config import DictAction


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("config", help="config file, e.g. configs/quickstart/mask_rcnn_vit_tiny_demo.py")
    parser.add_argument("--work-dir", help="where logs and checkpoints go (default: work_dirs/<config name>)")
    parser.add_argument("--resume", nargs="?", const=True, default=False,
                        help="resume from CKPT, or from the last checkpoint in the work dir when no path is given")
    parser.add_argument("--load-from", help="initialise the model from this checkpoint (no optimiser state); every "
                        "tensor must fit")
    parser.add_argument("--load-partial", action="store_true",
                        help="with --load-from: fine-tune from another model, loading the tensors that fit and "
                        "listing the ones skipped (missing, unexpected, other shape)")
    parser.add_argument("--amp", action="store_true", help="mixed precision (fp16 on GPU, bf16 on CPU)")
    parser.add_argument("--cfg-options", nargs="+", action=DictAction, help="override config keys: key=value")
    parser.add_argument("--launcher", choices=["none", "pytorch", "slurm"], default="none",
                        help="'pytorch' under torchrun for distributed training")
    parser.add_argument("--local-rank", "--local_rank", type=int, default=0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """The ``densevit-train`` command: ``argv`` (default: the command line) as above."""
    args = parse_args(argv)
    # imported after parsing, so that --help answers at once (torch alone takes seconds to import)
    from densevit.config import load_config
    from densevit.engine.runner import build_runner
    from densevit.vis.curves import plot_loss_curves

    cfg = load_config(args.config, args.cfg_options)
    work_dir = args.work_dir or cfg.get("work_dir") or str(Path("work_dirs") / Path(args.config).stem)
    if args.load_partial and not args.load_from:
        raise SystemExit("--load-partial needs --load-from CKPT")
    runner = build_runner(cfg, work_dir=work_dir, resume=args.resume, load_from=args.load_from, amp=args.amp,
                          launcher=args.launcher, load_partial=args.load_partial)
    runner.train()
    if runner.rank == 0:
        curves = plot_loss_curves(work_dir, Path(work_dir) / "loss_curves.png")
        print(f"loss curves drawn in {curves}" if curves else
              "no loss was logged (the run was shorter than the logging interval): no curves drawn")


if __name__ == "__main__":
    main()

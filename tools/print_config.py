"""Print a config fully resolved: its bases merged and every --cfg-options override applied.

    python tools/print_config.py CONFIG [--cfg-options KEY=VALUE ...] [--out FILE]

Classes and functions are shown as dotted import paths (``densevit.models.mask_rcnn.MaskRCNN``), the form a
dumped config holds and ``densevit.config`` resolves, so the output is itself a loadable config (``--out``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mmengine.config import DictAction


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", help="config file")
    parser.add_argument("--cfg-options", nargs="+", action=DictAction, help="override config keys: key=value")
    parser.add_argument("--out", type=Path, help="also write the resolved config to this .py file")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    from mmengine.config import Config

    from densevit.config import load_config, to_dotted  # after parsing: it imports torch

    cfg = load_config(args.config, args.cfg_options)
    resolved = Config(to_dotted(cfg.to_dict()))
    print(f"# {args.config}, resolved" + (f" with {dict(args.cfg_options)}" if args.cfg_options else ""))
    print(resolved.pretty_text)
    if args.out:
        resolved.dump(str(args.out))
        print(f"# written to {args.out}")


if __name__ == "__main__":
    main()

"""Make a training checkpoint publishable: weights and dataset meta only, the file named by its sha256.

    python tools/publish_model.py work_dirs/demo/iter_1000.pth release/ [--format safetensors|pth] [--name NAME]

Keeps the model's ``state_dict`` and the dataset meta (class names, category ids) and drops the optimizer,
parameter-scheduler, message-hub and RNG state. The file is written as ``OUT_DIR/<NAME>-<sha8>.<ext>``, where
sha8 is the first 8 hex digits of the written file's sha256 (as mmdet's publish_model names files) and NAME
defaults to the checkpoint's name. ``pth``: ``{"state_dict": ..., "meta": {"dataset_meta": ...}}``, readable with
weights-only loading; ``safetensors``: the tensors, with the dataset meta as JSON in the header's metadata
(``densevit_dataset_meta``). Both load with ``densevit.checkpoint.load_weights`` or a config's ``pretrained``.

A run trained with an EMA of its weights (``EMAHook``) saved the average as ``state_dict``: that is what is
published (BasicSR's ``params_ema``, the weights validation scored), marked ``meta.ema`` (``densevit_ema`` in a
safetensors header); the trained weights under ``ema_state_dict`` are dropped with the rest of the training state.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import Tensor


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path, help="a training checkpoint (.pth)")
    parser.add_argument("out_dir", type=Path, help="folder the published file goes to")
    parser.add_argument("--format", choices=("safetensors", "pth"), default="safetensors")
    parser.add_argument("--name", help="file name before the hash (default: the checkpoint's name)")
    return parser.parse_args()


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def unshared(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Contiguous tensors, each with its own storage (safetensors refuses tensors that share memory)."""
    seen: set[int] = set()
    out = {}
    for key, value in state.items():
        value = value.contiguous()
        ptr = value.untyped_storage().data_ptr()
        out[key] = value.clone() if ptr in seen else value
        seen.add(ptr)
    return out


def main() -> None:
    args = parse_args()
    # imported after parsing, so that --help answers at once
    import torch

    from densevit.checkpoint import ema_note, read_torch_checkpoint

    checkpoint = read_torch_checkpoint(args.checkpoint)
    if not isinstance(checkpoint, dict):
        raise SystemExit(f"{args.checkpoint}: expected a checkpoint dict, found {type(checkpoint).__name__}")
    state = checkpoint.get("state_dict", checkpoint)
    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise SystemExit(f"{args.checkpoint}: holds no tensors under 'state_dict' (keys: {sorted(checkpoint)})")
    dataset_meta = (checkpoint.get("meta") or {}).get("dataset_meta") or {}
    ema = ema_note(checkpoint) is not None
    args.out_dir.mkdir(parents=True, exist_ok=True)
    tmp = args.out_dir / f".{args.checkpoint.stem}.publishing"
    if args.format == "safetensors":
        from safetensors.torch import save_file

        header = {"format": "pt", "densevit_dataset_meta": json.dumps(dataset_meta)}
        save_file(unshared(tensors), str(tmp), metadata={**header, "densevit_ema": "true"} if ema else header)
    else:
        meta = {"dataset_meta": dataset_meta, "ema": True} if ema else {"dataset_meta": dataset_meta}
        torch.save({"state_dict": tensors, "meta": meta}, tmp)
    digest = sha256(tmp)
    final = args.out_dir / f"{args.name or args.checkpoint.stem}-{digest[:8]}.{args.format}"
    os.replace(tmp, final)
    size = sum(t.numel() * t.element_size() for t in tensors.values())
    dropped = [k for k in checkpoint if k not in ("state_dict", "meta")] if "state_dict" in checkpoint else []
    print(f"kept {len(tensors)} tensors, {sum(t.numel() for t in tensors.values()):,} values, "
          f"{size / 2**20:.2f} MiB; dataset meta: {json.dumps(dataset_meta) if dataset_meta else 'none'}")
    print(f"dropped: {', '.join(dropped) or 'nothing'} (and meta other than dataset_meta)")
    if ema:
        print("the weights are the exponential moving average (EMA) of the run's weights, which validation scored; "
              "the trained weights themselves (ema_state_dict) are dropped")
    print(f"written {final} ({final.stat().st_size / 2**20:.2f} MiB, sha256 {digest})")


if __name__ == "__main__":
    main()

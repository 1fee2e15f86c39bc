"""Time multi-scale deformable attention: densevit's embedding-bag op against the per-level grid_sample formula.

    python tools/benchmark_msda.py                      # ViT-CoMer-S at 512x512: 3 levels, 5376 queries, 6 heads
    python tools/benchmark_msda.py --image-size 1024 --heads 12 --channels 384 --batch 2

Both run in the same process on the same inputs (queries = every token of the three levels, as in ViT-CoMer;
sampling points around each token's reference point as after Deformable DETR's init, plus noise). Prints the
median over ``--repeats`` runs after one warm-up of the forward pass (no grad) and of forward + backward
(gradients for the values, sampling locations and attention weights), and the largest output difference.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image-size", type=int, default=512, help="image side; levels at strides 8, 16, 32")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--heads", type=int, default=6)
    parser.add_argument("--channels", type=int, default=384, help="value channels (all heads)")
    parser.add_argument("--points", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    parser.add_argument("--device", default="cpu")
    return parser.parse_args()


def make_inputs(args: argparse.Namespace) -> tuple[torch.Tensor, list[tuple[int, int]], torch.Tensor, torch.Tensor]:
    """Value [B, S, M, D], levels, locations [B, S, M, 3, P, 2] near each reference point, weights [B, S, M, 3, P]."""
    import torch

    from densevit.ops.ms_deform_attn import reference_points

    g = torch.Generator().manual_seed(0)
    shapes = [(args.image_size // s, args.image_size // s) for s in (8, 16, 32)]
    tokens = sum(h * w for h, w in shapes)
    b, m, p, d = args.batch, args.heads, args.points, args.channels // args.heads
    value = torch.randn(b, tokens, m, d, generator=g)
    # Offsets of up to `points` pixels in each level (the init's circle) plus noise of about 1 pixel.
    radius = torch.arange(1, p + 1).view(1, 1, 1, 1, p, 1)
    offsets = radius * (torch.rand(b, tokens, m, 3, p, 2, generator=g) * 2 - 1) + torch.randn(
        b, tokens, m, 3, p, 2, generator=g)
    level_size = torch.tensor([[w, h] for h, w in shapes], dtype=torch.float32).view(3, 1, 2)
    loc = reference_points(shapes)[:, :, :, None, None, :] + offsets / level_size
    weights = torch.randn(b, tokens, m, 3 * p, generator=g).softmax(-1).view(b, tokens, m, 3, p)
    return value.to(args.device), shapes, loc.to(args.device), weights.to(args.device)


def main() -> None:
    args = parse_args()
    # imported after parsing, so that --help answers at once
    import torch

    from densevit.benchmarking import median_ms, print_speed_table
    from densevit.ops.ms_deform_attn import ms_deform_attn, ms_deform_attn_grid_sample

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    value, shapes, loc, weights = make_inputs(args)
    ops = {"grid_sample (reference formula)": ms_deform_attn_grid_sample, "embedding_bag (densevit)": ms_deform_attn}

    def forward(op: Callable) -> Callable[[], object]:
        def run() -> object:
            with torch.no_grad():
                return op(value, shapes, loc, weights)
        return run

    def forward_backward(op: Callable) -> Callable[[], object]:
        def run() -> object:
            inputs = [t.detach().requires_grad_() for t in (value, loc, weights)]
            out = op(inputs[0], shapes, inputs[1], inputs[2])
            return torch.autograd.grad(out, inputs, torch.ones_like(out))
        return run

    outs = [forward(op)() for op in ops.values()]
    print(f"device {device} ({torch.get_num_threads()} threads), batch {args.batch}, levels {shapes}, "
          f"queries {value.shape[1]}, heads {args.heads}, head dim {value.shape[3]}, points {args.points}")
    print(f"max |difference| of the outputs: {(outs[0] - outs[1]).abs().max().item():.2e} (float32)")
    results = {name: (median_ms(forward(op), args.repeats, device),
                      median_ms(forward_backward(op), args.repeats, device)) for name, op in ops.items()}
    print_speed_table(results)


if __name__ == "__main__":
    main()

"""Time RoIAlign: densevit's weighted-bag op against torchvision's kernel, on a Mask R-CNN-like workload.

    python tools/benchmark_roi_align.py                         # the demo detector: 8 images of 256 px
    python tools/benchmark_roi_align.py --image-size 1024 --batch 2 --rois 512 --channels 256 --sampling-ratio 0

RoIs of random sizes (8 px to half the image) are pooled from the pyramid level FPN's rule gives them (strides
4-32), as in the box head (7x7) and the mask head (14x14). Prints the median over ``--repeats`` runs after a warm-up
of the forward pass (no grad) and of forward + backward (the maps' gradients), and the largest output difference.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

STRIDES = (4, 8, 16, 32)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--channels", type=int, default=128)
    parser.add_argument("--rois", type=int, default=64, help="RoIs per image")
    parser.add_argument("--output-size", type=int, nargs="+", default=[7, 14])
    parser.add_argument("--sampling-ratio", type=int, default=2, help="samples per bin axis; 0: adaptive")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    parser.add_argument("--device", default="cpu")
    return parser.parse_args()


def make_inputs(args: argparse.Namespace) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
    """Maps [B, C, H / s, W / s] per stride, rois [R, 5] and their levels [R] (FPN's rule from a 224 px box at p4)."""
    import torch

    from densevit.ops.roi_align import fpn_levels

    g = torch.Generator().manual_seed(0)
    size = args.image_size
    maps = [torch.randn(args.batch, args.channels, size // s, size // s, generator=g) for s in STRIDES]
    n = args.batch * args.rois
    side = torch.exp(torch.empty(n, 2).uniform_(torch.log(torch.tensor(8.0)), torch.log(torch.tensor(size / 2)),
                                                generator=g))
    x1y1 = torch.rand(n, 2, generator=g) * (size - side)
    rois = torch.cat([torch.arange(n)[:, None] // args.rois, x1y1, x1y1 + side], dim=1).float()
    level = fpn_levels(rois[:, 1:], first_level=2, num_levels=len(STRIDES))
    return [m.to(args.device) for m in maps], rois.to(args.device), level.to(args.device)


def forward(op: Callable, maps: list[torch.Tensor], *rest: object) -> torch.Tensor:
    """op(maps, rois, level, output_size, scales, sampling_ratio) without autograd."""
    import torch

    with torch.no_grad():
        return op(maps, *rest)


def forward_backward(op: Callable, maps: list[torch.Tensor], *rest: object) -> tuple[torch.Tensor, ...]:
    """The same with the maps' gradients for an all-ones upstream gradient."""
    import torch

    inputs = [m.detach().requires_grad_() for m in maps]
    out = op(inputs, *rest)
    return torch.autograd.grad(out, inputs, torch.ones_like(out), allow_unused=True)  # levels without RoIs


def main() -> None:
    args = parse_args()
    # imported after parsing, so that --help answers at once
    import torch

    from densevit.benchmarking import median_ms, print_speed_table
    from densevit.ops.roi_align import multilevel_roi_align, multilevel_roi_align_torchvision

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    maps, rois, level = make_inputs(args)
    scales = [1.0 / s for s in STRIDES]
    ops = {"torchvision roi_align": multilevel_roi_align_torchvision, "weighted bag (densevit)": multilevel_roi_align}
    print(f"device {device} ({torch.get_num_threads()} threads), batch {args.batch} of {args.image_size} px, "
          f"{args.channels} channels, {len(rois)} RoIs (per level {torch.bincount(level, minlength=4).tolist()}), "
          f"sampling ratio {args.sampling_ratio}")
    for output_size in args.output_size:
        rest = (rois, level, output_size, scales, args.sampling_ratio)
        outs = [forward(op, maps, *rest) for op in ops.values()]
        print(f"\noutput {output_size}x{output_size}: max |difference| {(outs[0] - outs[1]).abs().max().item():.2e}")
        results = {name: (median_ms(partial(forward, op, maps, *rest), args.repeats, device),
                          median_ms(partial(forward_backward, op, maps, *rest), args.repeats, device))
                   for name, op in ops.items()}
        print_speed_table(results)


if __name__ == "__main__":
    main()

"""The backbone interface: what every backbone and adapter declares about the maps it returns.

After detectron2's ``ShapeSpec`` / ``output_shape()`` and timm's ``feature_info``. A backbone or adapter maps an
image batch [B, 3, H, W] to a list of NCHW maps and sets ``output_shapes``, one ``ShapeSpec`` per map in the same
order. Consumers (adapters, heads, task models) read it through ``output_shapes(module, consumer)``, which fails
with a message naming both sides when a module does not declare it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torch import nn

__all__ = ["ShapeSpec", "levels_at", "output_shapes"]


@dataclass(frozen=True)
class ShapeSpec:
    """One output map: its channels and its stride in input pixels."""

    channels: int
    stride: int


def output_shapes(module: nn.Module, consumer: str) -> tuple[ShapeSpec, ...]:
    """``module.output_shapes``, checked: a non-empty tuple of ``ShapeSpec``; ``consumer`` names who asks."""
    shapes = getattr(module, "output_shapes", None)
    if not shapes or not all(isinstance(s, ShapeSpec) for s in shapes):
        raise TypeError(
            f"{consumer}: {type(module).__name__} does not declare its outputs; a backbone or adapter must set "
            f"output_shapes = (ShapeSpec(channels, stride), ...) with one entry per returned map "
            f"(densevit.backbones.interface), found {shapes!r}"
        )
    return tuple(shapes)


def levels_at(shapes: Sequence[ShapeSpec], strides: Sequence[int], consumer: str) -> list[int]:
    """Indexes of the first level with each wanted stride; the error lists the strides there are."""
    have = [s.stride for s in shapes]
    missing = [s for s in strides if s not in have]
    if missing:
        raise ValueError(f"{consumer}: no level with stride {missing}; the backbone's levels have strides "
                         f"{tuple(have)} and channels {tuple(s.channels for s in shapes)}")
    return [have.index(s) for s in strides]

"""The RPN's anchors are detectron2's (ViTDet's): cell anchors not rounded to whole pixels, on the stride grid."""

from __future__ import annotations

import math

import pytest
import torch
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.rpn import AnchorGenerator

from densevit.heads.rpn import UnroundedAnchorGenerator

SIZES = (32, 64, 128, 256, 512)  # ViTDet's, one a level at strides 4 to 64
RATIOS = (0.5, 1.0, 2.0)


def detectron2_cell_anchors(size: float, ratios: tuple[float, ...]) -> list[list[float]]:
    """detectron2's DefaultAnchorGenerator.generate_cell_anchors, in Python floats: w = sqrt(size^2 / r), h = r w."""
    anchors = []
    for ratio in ratios:
        w = math.sqrt(size**2 / ratio)
        h = ratio * w
        anchors.append([-w / 2, -h / 2, w / 2, h / 2])
    return anchors


def test_cell_anchors_are_detectron2s_not_rounded():
    generator = UnroundedAnchorGenerator(tuple((s,) for s in SIZES), (RATIOS,) * len(SIZES))
    for size, cell in zip(SIZES, generator.cell_anchors, strict=True):
        expected = torch.tensor(detectron2_cell_anchors(size, RATIOS))
        torch.testing.assert_close(cell, expected, rtol=0, atol=1e-5)
    rounded = AnchorGenerator(((32,),), (RATIOS,)).cell_anchors[0]  # torchvision's: 22.6 px becomes 23
    assert (rounded - generator.cell_anchors[0]).abs().max() == pytest.approx(0.3726, abs=1e-3)


def test_anchors_sit_on_the_stride_grid():
    """Per level: every grid point (x * stride, y * stride), row by row, with its cell anchors, as detectron2 lays
    them out (offset 0)."""
    generator = UnroundedAnchorGenerator(((32,), (64,)), (RATIOS, RATIOS))
    images = ImageList(torch.zeros(1, 3, 32, 48), [(32, 48)])
    maps = [torch.zeros(1, 8, 8, 12), torch.zeros(1, 8, 4, 6)]  # strides 4 and 8
    (anchors,) = generator(images, maps)
    assert anchors.shape == (8 * 12 * 3 + 4 * 6 * 3, 4)
    row, column = 2, 5  # stride 4: the anchors of grid point (y 2, x 5)
    first = (row * 12 + column) * 3
    cells = torch.tensor(detectron2_cell_anchors(32, RATIOS))
    torch.testing.assert_close(anchors[first:first + 3], cells + torch.tensor([20.0, 8.0, 20.0, 8.0]))

"""The restoration picture: input | restored over the same zoomed crop, placed where the images differ most."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from densevit.vis.restoration import draw_comparison, most_changed_box


def test_most_changed_box_finds_the_changed_window() -> None:
    before = np.zeros((60, 80, 3), np.uint8)
    after = before.copy()
    after[30:40, 50:60] = 200
    assert most_changed_box(before, after, 10) == (30, 50)


def test_comparison_layout_and_super_resolution_input() -> None:
    rng = np.random.default_rng(0)
    restored = rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)
    small = torch.from_numpy(restored[::2, ::2].transpose(2, 0, 1).copy())  # [3, 32, 48] uint8, shown enlarged
    picture = draw_comparison(small, restored)
    assert picture.dtype == np.uint8 and picture.shape == (64 + 4 + 96, 2 * 96 + 4, 3)
    assert draw_comparison(small, restored, zoom=False).shape == (64, 2 * 96 + 4, 3)  # a video frame: the top row
    with pytest.raises(ValueError, match="RGB uint8"):
        draw_comparison(restored.astype(np.float32), restored)

"""Detection pictures: labels stay inside the image and do not cover each other."""

from __future__ import annotations

import numpy as np

from densevit.vis.detection import _label_place, draw_detections


def test_labels_stay_inside_the_image_and_apart():
    boxes = np.array([[0, 0, 30, 30], [2, 1, 40, 40], [90, 50, 100, 60]], np.float32)  # two at the top-left corner
    placed: list[tuple[int, int, int, int]] = []
    for box in boxes:
        x, y = _label_place(box, 40, 10, (64, 100), placed)
        assert 0 <= x <= 100 - 40 and 0 <= y <= 64 - 10  # the third would run off the right edge
        assert all(not (x < r[2] and r[0] < x + 40 and y < r[3] and r[1] < y + 10) for r in placed)
        placed.append((x, y, x + 40, y + 10))
    out = draw_detections(np.zeros((64, 100, 3), np.uint8), boxes, np.array([0, 1, 0]), np.array([0.9, 0.8, 0.7]),
                          ("a", "b"), score_thr=0.75)
    assert out.shape == (64, 100, 3) and out[:, 85:].max() == 0  # the 0.7 detection is below the threshold

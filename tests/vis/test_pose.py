"""Skeleton drawing: joints coloured by side, limbs between shown joints, low-scoring joints left out."""

import numpy as np

from densevit.datasets.keypoint_info import COCO_KEYPOINTS
from densevit.vis.pose import SIDE_COLORS, draw_poses


def test_joints_are_coloured_by_side_and_low_scores_are_left_out() -> None:
    image = np.zeros((200, 160, 3), np.uint8)
    kpts = np.stack([np.linspace(20, 140, 17), np.linspace(20, 180, 17)], -1)[None]
    scores = np.ones((1, 17))
    scores[0, 16] = 0.1  # right ankle: not drawn
    out = draw_poses(image, kpts, scores, COCO_KEYPOINTS.skeleton, COCO_KEYPOINTS.sides, scores=np.array([0.9]))
    assert out.shape == image.shape and not out[image.shape[0] // 2].all() and image.max() == 0
    for k, side in ((0, 0), (5, 1), (6, -1)):
        x, y = np.round(kpts[0, k]).astype(int)
        assert tuple(out[y, x]) == SIDE_COLORS[side]
    x, y = np.round(kpts[0, 16]).astype(int)
    assert tuple(out[y, x]) != SIDE_COLORS[-1]
    hidden = draw_poses(image, kpts, scores, COCO_KEYPOINTS.skeleton, COCO_KEYPOINTS.sides,
                        scores=np.array([0.1]), score_thr=0.5)
    assert hidden.max() == 0

"""Pose pictures: skeletons over an image, joints and limbs coloured by the body side, with instance scores."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

__all__ = ["SIDE_COLORS", "draw_poses"]

# RGB per side: the person's left, right, and the middle (face, cross-body limbs); mmpose's COCO palette.
SIDE_COLORS: dict[int, tuple[int, int, int]] = {1: (0, 255, 0), -1: (255, 128, 0), 0: (51, 153, 255)}


def draw_poses(
    image: np.ndarray,
    keypoints: np.ndarray,
    keypoint_scores: np.ndarray,
    skeleton: Sequence[Sequence[int]],
    sides: Sequence[int],
    scores: np.ndarray | None = None,
    boxes: np.ndarray | None = None,
    keypoint_thr: float = 0.3,
    score_thr: float = 0.0,
) -> np.ndarray:
    """image: RGB uint8 [H, W, 3]; keypoints [N, K, 2]; keypoint_scores [N, K] -> annotated RGB copy.

    ``skeleton``: 0-based joint pairs; ``sides``: per joint +1 (left), -1 (right), 0 (middle), as
    ``KeypointInfo.sides``. Joints scoring below ``keypoint_thr`` and their limbs are left out; instances scoring
    below ``score_thr`` are not drawn. ``boxes`` [N, 4] xywh (the person boxes) are drawn thin when given, and each
    instance's score is written above its pose.
    """
    out = image.copy()
    keypoints = np.asarray(keypoints, np.float64).reshape(-1, len(sides), 2)
    keypoint_scores = np.asarray(keypoint_scores, np.float64).reshape(len(keypoints), len(sides))
    n = len(keypoints)
    scores = np.ones(n) if scores is None else np.asarray(scores, np.float64).reshape(n)
    size = max(image.shape[:2])
    thick, radius = max(1, round(size / 300)), max(2, round(size / 160))
    for i in np.argsort(scores, kind="stable"):  # best drawn last, on top
        if scores[i] < score_thr:
            continue
        shown = keypoint_scores[i] >= keypoint_thr
        pts = np.round(keypoints[i]).astype(np.int64)
        if boxes is not None:
            x, y, w, h = (round(float(v)) for v in boxes[i])
            cv2.rectangle(out, (x, y), (x + w, y + h), (200, 200, 200), max(1, thick // 2))
        for a, b in skeleton:
            if shown[a] and shown[b]:
                side = sides[a] if sides[a] == sides[b] else 0
                cv2.line(out, tuple(pts[a].tolist()), tuple(pts[b].tolist()), SIDE_COLORS[side], thick + 1,
                         cv2.LINE_AA)
        for k in np.flatnonzero(shown):
            cv2.circle(out, tuple(pts[k].tolist()), radius, SIDE_COLORS[int(sides[k])], -1, cv2.LINE_AA)
            cv2.circle(out, tuple(pts[k].tolist()), radius, (0, 0, 0), 1, cv2.LINE_AA)
        if shown.any():
            x0, y0 = pts[shown].min(0)
            text = f"{scores[i]:.2f}"
            scale = 0.35 * thick
            (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
            ty = max(int(y0) - radius - 2, th + base)
            cv2.rectangle(out, (int(x0), ty - th - base), (int(x0) + tw, ty), (255, 255, 255), -1)
            cv2.putText(out, text, (int(x0), ty - base), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return out

"""Keypoint codec maths: the UDP affine, UDP targets against a transcription of the reference loop, DARK-UDP."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch

from densevit.ops.keypoints import (
    box_to_center_scale,
    dark_udp_decode,
    flip_heatmaps,
    heatmap_maxima,
    heatmap_to_input,
    invert_affine,
    transform_points,
    udp_heatmaps,
    udp_warp_matrix,
)

INPUT = (192, 256)  # (w, h)
HEATMAP = (48, 64)


def reference_udp_heatmaps(kpts, vis, input_size, heatmap_size, sigma=2.0):
    """The reference's per-joint loop (mmpose 0.x TopDownGenerateTarget, UDP Gaussian), written out plainly."""
    w, h = heatmap_size
    stride = [(input_size[i] - 1.0) / (heatmap_size[i] - 1.0) for i in range(2)]
    radius = int(sigma * 3)
    size = 2 * radius + 1
    x = np.arange(0, size, 1, np.float64)
    y = x[:, None]
    target = np.zeros((len(kpts), h, w), np.float64)
    weight = np.array(vis, np.float64)
    for k, (px, py) in enumerate(kpts):
        mu_x, mu_y = int(px / stride[0] + 0.5), int(py / stride[1] + 0.5)
        ul = [mu_x - radius, mu_y - radius]
        br = [mu_x + radius + 1, mu_y + radius + 1]
        if ul[0] >= w or ul[1] >= h or br[0] < 0 or br[1] < 0:
            weight[k] = 0
            continue
        x0 = size // 2 + px / stride[0] - mu_x
        y0 = size // 2 + py / stride[1] - mu_y
        g = np.exp(-((x - x0) ** 2 + (y - y0) ** 2) / (2 * sigma**2))
        gx = max(0, -ul[0]), min(br[0], w) - ul[0]
        gy = max(0, -ul[1]), min(br[1], h) - ul[1]
        ix = max(0, ul[0]), min(br[0], w)
        iy = max(0, ul[1]), min(br[1], h)
        if weight[k] > 0.5:
            target[k, iy[0]:iy[1], ix[0]:ix[1]] = g[gy[0]:gy[1], gx[0]:gx[1]]
    return target, weight


def test_box_to_center_scale_fixes_aspect_then_pads():
    center, scale = box_to_center_scale([[10, 20, 30, 80], [0, 0, 120, 40]])
    np.testing.assert_allclose(center, [[25, 60], [60, 20]])
    np.testing.assert_allclose(scale, [[60 * 1.25, 80 * 1.25], [120 * 1.25, 160 * 1.25]])


@pytest.mark.parametrize("rot", [0.0, 30.0, -75.0])
def test_udp_warp_matrix_maps_the_box_onto_the_crop(rot):
    center, scale = np.array([300.5, 210.25]), np.array([150.0, 200.0])
    m = udp_warp_matrix(center, scale, rot, INPUT)
    # Independent composition: translate the centre to 0, rotate, scale by (in - 1) / box, move to the middle.
    t = math.radians(rot)
    rotate = np.array([[math.cos(t), -math.sin(t), 0], [math.sin(t), math.cos(t), 0], [0, 0, 1]])
    to_origin = np.array([[1, 0, -center[0]], [0, 1, -center[1]], [0, 0, 1]])
    stretch = np.diag([(INPUT[0] - 1) / scale[0], (INPUT[1] - 1) / scale[1], 1])
    to_middle = np.array([[1, 0, (INPUT[0] - 1) / 2], [0, 1, (INPUT[1] - 1) / 2], [0, 0, 1]])
    np.testing.assert_allclose(m, (to_middle @ stretch @ rotate @ to_origin)[:2], atol=1e-9)
    points = np.array([[12.0, 40.0], [310.0, 200.0]])
    np.testing.assert_allclose(transform_points(transform_points(points, m), invert_affine(m)), points, atol=1e-9)
    np.testing.assert_allclose(invert_affine(m), cv2.invertAffineTransform(m), atol=1e-9)


def test_udp_warp_matrix_box_corners_and_cv2_crop():
    center, scale = np.array([100.0, 80.0]), np.array([96.0, 128.0])
    m = udp_warp_matrix(center, scale, 0.0, INPUT)
    corners = transform_points([[100 - 48, 80 - 64], [100 + 48, 80 + 64]], m)
    np.testing.assert_allclose(corners, [[0, 0], [191, 255]], atol=1e-9)
    image = np.zeros((200, 240), np.float32)
    image[70, 110] = 1.0  # one bright pixel: the crop's peak lands where the affine sends it
    crop = cv2.warpAffine(image, m, INPUT, flags=cv2.INTER_LINEAR)
    y, x = np.unravel_index(crop.argmax(), crop.shape)
    expect = transform_points([110, 70], m)
    assert abs(x - expect[0]) <= 1 and abs(y - expect[1]) <= 1


def test_udp_heatmaps_equal_the_reference_loop():
    rng = np.random.default_rng(0)
    kpts = np.concatenate([
        rng.uniform([0, 0], [191, 255], size=(12, 2)),
        [[-10.0, 5.0], [-40.0, 100.0], [195.0, 258.0], [400.0, 20.0], [0.0, 0.0]],  # off the crop / edges
    ])
    vis = np.ones(len(kpts))
    vis[3] = 0
    heatmaps, weight = udp_heatmaps(kpts, vis, INPUT, HEATMAP)
    ref, ref_weight = reference_udp_heatmaps(kpts, vis, INPUT, HEATMAP)
    assert heatmaps.shape == (17, 64, 48) and heatmaps.dtype == np.float32
    np.testing.assert_allclose(heatmaps, ref, atol=1e-6)
    np.testing.assert_array_equal(weight, ref_weight)
    assert weight[3] == 0 and weight[13] == weight[15] == 0  # invisible; windows off the map
    assert weight[12] == weight[14] == 1  # windows partly on the map
    assert heatmaps.max() <= 1.0


def test_udp_round_trip_within_005_px():
    rng = np.random.default_rng(1)
    kpts = rng.uniform([24, 24], [168, 232], size=(200, 2))  # away from the blur's border
    heatmaps, _ = udp_heatmaps(kpts, np.ones(len(kpts)), INPUT, HEATMAP)
    coords, maxvals = dark_udp_decode(torch.from_numpy(heatmaps).view(10, 20, 64, 48))
    assert coords.shape == (10, 20, 2) and maxvals.shape == (10, 20)
    back = heatmap_to_input(coords.double(), INPUT, HEATMAP).reshape(-1, 2).numpy()
    assert np.abs(back - kpts).max() < 0.05


def reference_dark_udp(heatmaps: np.ndarray, kernel: int = 11) -> tuple[np.ndarray, np.ndarray]:
    """mmpose 0.x's ``_get_max_preds`` + ``post_dark_udp`` on [N, K, h, w], with OpenCV's blur and flat indexing."""
    n, k, h, w = heatmaps.shape
    flat = heatmaps.reshape(n, k, -1)
    idx = flat.argmax(2)[..., None].astype(np.float32)
    maxvals = flat.max(2)[..., None]
    coords = np.concatenate([idx % w, idx // w], axis=2)
    coords = np.where(np.tile(maxvals, (1, 1, 2)) > 0, coords, -1)
    maps = heatmaps.copy()
    for one in maps.reshape(-1, h, w):
        cv2.GaussianBlur(one, (kernel, kernel), 0, one)
    np.clip(maps, 0.001, 50, maps)
    np.log(maps, maps)
    pad = np.pad(maps, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="edge").flatten()
    index = coords[..., 0] + 1 + (coords[..., 1] + 1) * (w + 2)
    index += (w + 2) * (h + 2) * np.arange(0, n * k).reshape(-1, k)
    index = index.astype(int).reshape(-1, 1)
    i_, ix1, iy1 = pad[index], pad[index + 1], pad[index + w + 2]
    ix1y1, ix1_y1_ = pad[index + w + 3], pad[index - w - 3]
    ix1_, iy1_ = pad[index - 1], pad[index - 2 - w]
    dx, dy = 0.5 * (ix1 - ix1_), 0.5 * (iy1 - iy1_)
    derivative = np.concatenate([dx, dy], axis=1).reshape(n, k, 2, 1)
    dxx, dyy = ix1 - 2 * i_ + ix1_, iy1 - 2 * i_ + iy1_
    dxy = 0.5 * (ix1y1 - ix1 - iy1 + i_ + i_ - ix1_ - iy1_ + ix1_y1_)
    hessian = np.linalg.inv(np.concatenate([dxx, dxy, dxy, dyy], axis=1).reshape(n, k, 2, 2)
                            + np.finfo(np.float32).eps * np.eye(2))
    return coords - np.einsum("ijmn,ijnk->ijmk", hessian, derivative).squeeze(-1), maxvals[..., 0]


def test_dark_udp_equals_the_reference_with_opencv_blur():
    rng = np.random.default_rng(3)
    kpts = rng.uniform([0, 0], [191, 255], size=(2 * 17, 2))
    heatmaps, _ = udp_heatmaps(kpts, np.ones(len(kpts)), INPUT, HEATMAP)
    # network-like maps: targets plus noise and a second, weaker peak
    heatmaps = heatmaps.reshape(2, 17, 64, 48) + 0.05 * rng.standard_normal((2, 17, 64, 48)).astype(np.float32)
    heatmaps += 0.5 * np.roll(heatmaps, (9, 7), axis=(2, 3))
    ref_coords, ref_maxvals = reference_dark_udp(heatmaps)
    coords, maxvals = dark_udp_decode(torch.from_numpy(heatmaps))
    np.testing.assert_allclose(maxvals.numpy(), ref_maxvals, rtol=1e-6)
    np.testing.assert_allclose(coords.numpy(), ref_coords, atol=1e-4)


def test_udp_flip_is_exact_on_heatmaps():
    # (A joint exactly half-way between heatmap pixels would round its window differently once mirrored.)
    kpts = np.array([[30.3, 40.7], [150.2, 200.9], [95.0, 127.5]])
    mirrored = kpts.copy()
    mirrored[:, 0] = INPUT[0] - 1 - mirrored[:, 0]
    heatmaps, _ = udp_heatmaps(kpts, np.ones(3), INPUT, HEATMAP)
    flipped, _ = udp_heatmaps(mirrored[[1, 0, 2]], np.ones(3), INPUT, HEATMAP)  # joints 0 and 1 are a pair
    back = flip_heatmaps(torch.from_numpy(flipped), [(0, 1)])
    torch.testing.assert_close(back, torch.from_numpy(heatmaps), atol=1e-6, rtol=0)


def test_heatmap_maxima_marks_empty_maps():
    maps = torch.zeros(2, 16, 12)
    maps[0, 2, 3] = 0.5
    coords, maxvals = heatmap_maxima(maps)
    torch.testing.assert_close(coords, torch.tensor([[3.0, 2.0], [-1.0, -1.0]]))
    torch.testing.assert_close(maxvals, torch.tensor([0.5, 0.0]))
    refined, _ = dark_udp_decode(maps)
    torch.testing.assert_close(refined[1], torch.tensor([-1.0, -1.0]))
    with pytest.raises(ValueError, match="too small"):
        dark_udp_decode(maps[:, :4, :5])

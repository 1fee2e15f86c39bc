"""Top-down keypoint codec maths as ViTPose computes it: the UDP crop affine, UDP heatmaps, DARK-UDP decoding.

Unbiased Data Processing (UDP, Huang et al. 2020) measures sizes in pixel *intervals*: an image of ``w`` pixels
spans ``w - 1`` units, so the crop maps the box onto ``(in - 1)`` units and a heatmap pixel is
``(in - 1) / (hm - 1)`` input pixels. With that convention a horizontal flip maps heatmap column ``j`` to
``hm - 1 - j`` exactly, which is why UDP models need no heatmap shift in the flip test.

Conventions (those of mmpose's codecs): sizes are ``(width, height)``, points are ``(x, y)`` in pixel
coordinates (pixel centres at integers), heatmaps are ``[K, height, width]``. Numpy functions serve the data
pipeline (crop, targets); ``dark_udp_decode`` is torch so that it runs on the model's device.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import ArrayLike
from torch import Tensor

__all__ = [
    "box_to_center_scale",
    "dark_udp_decode",
    "flip_heatmaps",
    "heatmap_maxima",
    "heatmap_to_input",
    "invert_affine",
    "transform_points",
    "udp_heatmaps",
    "udp_warp_matrix",
]


def box_to_center_scale(
    bbox_xywh: ArrayLike, aspect_ratio: float = 0.75, padding: float = 1.25
) -> tuple[np.ndarray, np.ndarray]:
    """Box ``[..., 4]`` (x, y, w, h) -> (centre ``[..., 2]``, scale ``[..., 2]`` = crop w, h in pixels).

    The short side is enlarged so that w / h = ``aspect_ratio`` (input width / height, 192 / 256), then both are
    multiplied by ``padding``. (ViTPose 0.x stores scale / 200 and multiplies it back: the same pixels.)
    """
    box = np.asarray(bbox_xywh, dtype=np.float64)
    x, y, w, h = np.moveaxis(box, -1, 0)
    center = np.stack([x + 0.5 * w, y + 0.5 * h], axis=-1)
    w, h = np.where(w > aspect_ratio * h, w, h * aspect_ratio), np.where(w > aspect_ratio * h, w / aspect_ratio, h)
    return center, np.stack([w, h], axis=-1) * padding


def udp_warp_matrix(
    center: ArrayLike, scale: ArrayLike, rot_deg: float, output_size: Sequence[int]
) -> np.ndarray:
    """The UDP crop affine [2, 3] (float64): original image -> crop of ``output_size`` (w, h).

    The box centre goes to ((w - 1) / 2, (h - 1) / 2), the box's ``scale`` (w, h) pixels to ``(w - 1, h - 1)``
    units, and the crop is rotated by ``rot_deg`` (counter-clockwise in the image) about the centre.
    Use it with ``cv2.warpAffine(img, M, (w, h), flags=cv2.INTER_LINEAR)``.
    """
    cx, cy = (float(v) for v in np.asarray(center, dtype=np.float64).reshape(2))
    bw, bh = (float(v) for v in np.asarray(scale, dtype=np.float64).reshape(2))
    if bw <= 0 or bh <= 0:
        raise ValueError(f"udp_warp_matrix: box scale must be positive, found {(bw, bh)}")
    sx = (output_size[0] - 1.0) / bw
    sy = (output_size[1] - 1.0) / bh
    theta = math.radians(rot_deg)
    cos, sin = math.cos(theta), math.sin(theta)
    # Rotate about the box centre, scale, then move the centre to the middle of the output.
    return np.array([
        [cos * sx, -sin * sx, sx * (-cx * cos + cy * sin + 0.5 * bw)],
        [sin * sy, cos * sy, sy * (-cx * sin - cy * cos + 0.5 * bh)],
    ])


def invert_affine(matrix: ArrayLike) -> np.ndarray:
    """The inverse of a [2, 3] affine (as ``cv2.invertAffineTransform``), float64."""
    m = np.asarray(matrix, dtype=np.float64)
    linear = np.linalg.inv(m[:, :2])
    return np.concatenate([linear, -linear @ m[:, 2:]], axis=1)


def transform_points(points: ArrayLike, matrix: ArrayLike) -> np.ndarray:
    """Apply a [2, 3] affine to points ``[..., 2]`` (x, y); float64."""
    p = np.asarray(points, dtype=np.float64)
    m = np.asarray(matrix, dtype=np.float64)
    return p @ m[:, :2].T + m[:, 2]


def udp_heatmaps(
    keypoints: ArrayLike,
    visible: ArrayLike,
    input_size: Sequence[int],
    heatmap_size: Sequence[int],
    sigma: float = 2.0,
) -> tuple[np.ndarray, np.ndarray]:
    """UDP Gaussian targets: keypoints [K, 2] in input pixels, visible [K] -> (heatmaps [K, h, w], weight [K]).

    Each joint lands at mu = p / stride with stride (in - 1) / (hm - 1); its Gaussian exp(-d^2 / (2 sigma^2)) is
    centred at the exact mu but written only inside the (6 sigma + 1)^2 window around int(mu + 0.5), as the
    reference does. Weight is 1 for visible joints (v > 0.5) and 0 when invisible or when the window is entirely
    off the map (the map then stays zero). float32.
    """
    kpts = np.asarray(keypoints, dtype=np.float64).reshape(-1, 2)
    vis = np.asarray(visible, dtype=np.float64).reshape(-1)
    if len(vis) != len(kpts):
        raise ValueError(f"udp_heatmaps: {len(kpts)} keypoints but {len(vis)} visibility flags")
    w, h = int(heatmap_size[0]), int(heatmap_size[1])
    stride = (np.asarray(input_size, dtype=np.float64) - 1.0) / (np.asarray(heatmap_size, dtype=np.float64) - 1.0)
    radius = 3 * sigma
    mu = kpts / stride  # [K, 2] exact centres in heatmap pixels
    mu_int = np.trunc(mu + 0.5)  # Python's int(): truncation toward zero, as the reference
    lo = np.trunc(mu_int - radius)
    hi = np.trunc(mu_int + radius + 1)  # exclusive
    on_map = (lo[:, 0] < w) & (lo[:, 1] < h) & (hi[:, 0] >= 0) & (hi[:, 1] >= 0)
    weight = ((vis > 0.5) & on_map).astype(np.float32)
    xs = np.arange(w, dtype=np.float64)
    ys = np.arange(h, dtype=np.float64)
    in_x = (xs[None] >= lo[:, :1]) & (xs[None] < hi[:, :1])  # [K, w]
    in_y = (ys[None] >= lo[:, 1:]) & (ys[None] < hi[:, 1:])  # [K, h]
    gx = np.exp(-((xs[None] - mu[:, :1]) ** 2) / (2 * sigma**2)) * in_x
    gy = np.exp(-((ys[None] - mu[:, 1:]) ** 2) / (2 * sigma**2)) * in_y
    heatmaps = gy[:, :, None] * gx[:, None, :] * weight[:, None, None]
    return heatmaps.astype(np.float32), weight


def heatmap_maxima(heatmaps: Tensor) -> tuple[Tensor, Tensor]:
    """Argmax of each map: heatmaps [..., K, h, w] -> (coords [..., K, 2] (x, y) float, maxvals [..., K]).

    As the reference: coords are -1 where the maximum is not positive.
    """
    w = heatmaps.shape[-1]
    maxvals, index = heatmaps.flatten(-2).max(dim=-1)
    coords = torch.stack([index % w, torch.div(index, w, rounding_mode="floor")], dim=-1).to(heatmaps.dtype)
    return torch.where(maxvals[..., None] > 0, coords, torch.full_like(coords, -1.0)), maxvals


def _gaussian_kernel_1d(kernel: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    # OpenCV's GaussianBlur with sigma 0 derives sigma from the kernel size (2.0 for 11).
    sigma = 0.3 * ((kernel - 1) * 0.5 - 1) + 0.8
    x = torch.arange(kernel, dtype=torch.float64, device=device) - (kernel - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return (g / g.sum()).to(dtype)


def _blur(heatmaps: Tensor, kernel: int) -> Tensor:
    """Separable Gaussian blur of [N, h, w] maps with OpenCV's default border (reflect-101 = torch 'reflect')."""
    g = _gaussian_kernel_1d(kernel, heatmaps.dtype, heatmaps.device)
    pad = kernel // 2
    x = F.pad(heatmaps[:, None], (pad, pad, pad, pad), mode="reflect")
    x = F.conv2d(x, g.view(1, 1, 1, -1))
    x = F.conv2d(x, g.view(1, 1, -1, 1))
    return x[:, 0]


def dark_udp_decode(heatmaps: Tensor, kernel: int = 11) -> tuple[Tensor, Tensor]:
    """DARK-UDP: heatmaps [..., K, h, w] -> (coords [..., K, 2] in heatmap pixels, maxvals [..., K]).

    As ViTPose (mmpose 0.x ``post_dark_udp``): argmax and raw maximum of each map; then the maps are blurred
    (``kernel`` x ``kernel`` Gaussian, OpenCV's sigma and reflect-101 border), clipped to [1e-3, 50], logged and
    edge-padded, and one Newton step x -= (H + eps I)^-1 grad (central differences at the argmax) refines each
    coordinate. Joints whose maximum is not positive keep -1 and are not refined.
    """
    if heatmaps.dim() < 3:
        raise ValueError(f"dark_udp_decode: expected heatmaps [..., K, h, w], found shape {list(heatmaps.shape)}")
    lead, (h, w) = heatmaps.shape[:-2], heatmaps.shape[-2:]
    if min(h, w) <= kernel // 2:
        raise ValueError(f"dark_udp_decode: heatmaps of {h}x{w} are too small for the {kernel}x{kernel} blur "
                         f"(the reflected border needs more than {kernel // 2} pixels per side)")
    maps = heatmaps.detach().float().reshape(-1, h, w)
    coords, maxvals = heatmap_maxima(maps)
    logs = F.pad(_blur(maps, kernel).clamp(1e-3, 50).log()[:, None], (1, 1, 1, 1), mode="replicate")[:, 0]
    valid = maxvals > 0
    x = coords[:, 0].long().clamp(0, w - 1) + 1  # padded indexes
    y = coords[:, 1].long().clamp(0, h - 1) + 1
    n = torch.arange(len(maps), device=maps.device)

    def at(dy: int, dx: int) -> Tensor:
        return logs[n, y + dy, x + dx].double()

    center = at(0, 0)
    dx = 0.5 * (at(0, 1) - at(0, -1))
    dy = 0.5 * (at(1, 0) - at(-1, 0))
    dxx = at(0, 1) - 2 * center + at(0, -1)
    dyy = at(1, 0) - 2 * center + at(-1, 0)
    dxy = 0.5 * (at(1, 1) - at(0, 1) - at(1, 0) + 2 * center - at(0, -1) - at(-1, 0) + at(-1, -1))
    eps = torch.finfo(torch.float32).eps
    hessian = torch.stack([torch.stack([dxx + eps, dxy], -1), torch.stack([dxy, dyy + eps], -1)], -2)
    step = (torch.linalg.inv(hessian) @ torch.stack([dx, dy], -1)[..., None])[..., 0]
    refined = torch.where(valid[:, None], coords.double() - step, coords.double())
    return refined.to(heatmaps.dtype).reshape(*lead, 2), maxvals.to(heatmaps.dtype).reshape(lead)


def heatmap_to_input(
    coords: Tensor | np.ndarray, input_size: Sequence[int], heatmap_size: Sequence[int]
) -> Tensor | np.ndarray:
    """Heatmap pixels [..., 2] -> input-crop pixels: times the UDP stride (in - 1) / (hm - 1) per axis."""
    stride = [(input_size[i] - 1.0) / (heatmap_size[i] - 1.0) for i in range(2)]
    if isinstance(coords, Tensor):
        return coords * coords.new_tensor(stride)
    return np.asarray(coords, dtype=np.float64) * np.asarray(stride)


def flip_heatmaps(heatmaps: Tensor, flip_pairs: Sequence[Sequence[int]]) -> Tensor:
    """Heatmaps of a mirrored crop [..., K, h, w] -> heatmaps of the original: mirror and swap left/right joints."""
    order = list(range(heatmaps.shape[-3]))
    for a, b in flip_pairs:
        order[a], order[b] = order[b], order[a]
    return heatmaps.flip(-1)[..., order, :, :]

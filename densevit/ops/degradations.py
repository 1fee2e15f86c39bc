"""Image degradations of the restoration benchmarks: MATLAB-style bicubic resizing, Gaussian noise and blur.

``imresize`` computes what MATLAB's ``imresize(img, scale, 'bicubic')`` computes (the SR test sets' LR images are
made with it): Keys' cubic kernel with a = -0.5, widened by 1 / scale when shrinking (antialiasing), half-pixel
centred coordinates, symmetric padding, rows resized before columns, uint8 results rounded half away from zero.
OpenCV's INTER_CUBIC (a = -0.75, no antialiasing) and PIL's bicubic are different functions.

``test_noise`` is the colour-denoising test protocol of Restormer / SwinIR: the clean image as float32 in [0, 1]
plus N(0, (sigma / 255)^2) drawn from ``np.random.seed(seed)``'s stream, neither clipped nor quantised.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

__all__ = ["add_gaussian_noise", "cubic", "gaussian_blur", "imresize", "resize_contributions", "test_noise"]


def cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's 'bicubic'); zero for |x| > 2."""
    ax = np.abs(x)
    ax2, ax3 = ax**2, ax**3
    near = (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
    far = (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2))
    return near + far


def resize_contributions(in_length: int, out_length: int, scale: float,
                         antialias: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Weights and 0-based input indexes of each output pixel along one axis: (weights, indexes), both [out, P].

    Output pixel x (1-based) sits at u = x / scale + (1 - 1 / scale) / 2 in input coordinates; the P = ceil(width)
    + 2 pixels from floor(u - width / 2) contribute with weight h(u - index), normalised per output pixel. Indexes
    outside the image are mirrored with the edge pixel repeated (MATLAB's symmetric padding).
    """
    width = 4.0
    if scale < 1 and antialias:
        width /= scale
    x = np.arange(1, out_length + 1, dtype=np.float64)[:, None]
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(u - width / 2.0)
    taps = math.ceil(width) + 2
    indexes = left + np.arange(taps, dtype=np.float64)[None, :]  # 1-based, [out, P]
    distance = u - indexes
    weights = scale * cubic(scale * distance) if scale < 1 and antialias else cubic(distance)
    weights = weights / weights.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(in_length), np.arange(in_length - 1, -1, -1)])  # 0-based, period 2n
    return weights, mirror[np.mod(indexes.astype(np.int64) - 1, 2 * in_length)]


def _resize_axis(img: np.ndarray, axis: int, out_length: int, scale: float, antialias: bool) -> np.ndarray:
    """Resize a float64 array along ``axis`` (0 = rows, 1 = columns)."""
    weights, indexes = resize_contributions(img.shape[axis], out_length, scale, antialias)
    moved = np.moveaxis(img, axis, 0)  # [L, ...]
    gathered = moved[indexes]  # [out, P, ...]
    out = np.einsum("op,op...->o...", weights, gathered)
    return np.moveaxis(out, 0, axis)


def imresize(img: np.ndarray, scale: float, antialias: bool = True) -> np.ndarray:
    """MATLAB ``imresize(img, scale, 'bicubic')`` of an [H, W] or [H, W, C] array -> ceil(H * scale) x ceil(W * scale).

    Floats are resized in float64 and returned as float64 (not clipped); uint8 is returned as uint8, rounded half
    away from zero and saturated, as MATLAB does.
    """
    if img.ndim not in (2, 3):
        raise ValueError(f"imresize: expected an [H, W] or [H, W, C] image, found shape {list(img.shape)}")
    if scale <= 0:
        raise ValueError(f"imresize: scale must be positive, got {scale}")
    is_uint8 = img.dtype == np.uint8
    if not (is_uint8 or np.issubdtype(img.dtype, np.floating)):
        raise TypeError(f"imresize: expected a uint8 or float image, found {img.dtype}")
    out = img.astype(np.float64)
    # MATLAB resizes the dimension with the smaller scale first; with one scale for both, rows come first.
    for axis in (0, 1):
        out = _resize_axis(out, axis, math.ceil(img.shape[axis] * scale), scale, antialias)
    if is_uint8:
        return np.clip(np.floor(out + 0.5), 0, 255).astype(np.uint8)
    return out


def add_gaussian_noise(image: np.ndarray, sigma: float, rng: np.random.RandomState) -> np.ndarray:
    """float [H, W, C] image in [0, 1] -> float32 copy + N(0, (sigma / 255)^2) from ``rng``, unclipped.

    The float64 noise is added in place to a float32 copy, so the sum is rounded to float32 as in Restormer's test.
    """
    noisy = image.astype(np.float32)  # a copy
    noisy += rng.normal(0.0, sigma / 255.0, noisy.shape)
    return noisy


def test_noise(clean: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    """Restormer's Gaussian colour-denoising test input: uint8 RGB [H, W, 3] -> float32 [H, W, 3] in about [0, 1].

    float32(clean) / 255 plus what ``np.random.seed(seed); np.random.normal(0, sigma / 255, shape)`` draws,
    unclipped. The realisation is part of the benchmark: the same seed on the BGR array (SwinIR) gives other noise.
    """
    if clean.dtype != np.uint8:
        raise TypeError(f"test_noise: expected the clean uint8 image, found {clean.dtype}")
    # RandomState(seed) draws what the seeded global generator draws, without touching it.
    return add_gaussian_noise(clean.astype(np.float32) / 255.0, sigma, np.random.RandomState(seed))


test_noise.__test__ = False  # a function, not a pytest test


def gaussian_blur(img: np.ndarray, sigma: float, kernel_size: int = 0) -> np.ndarray:
    """Gaussian blur of a float [H, W(, C)] image, reflect-101 borders; kernel_size 0 means 2 * ceil(3 sigma) + 1."""
    if sigma <= 0:
        raise ValueError(f"gaussian_blur: sigma must be positive, got {sigma}")
    if kernel_size == 0:
        kernel_size = 2 * math.ceil(3 * sigma) + 1
    if kernel_size % 2 == 0:
        raise ValueError(f"gaussian_blur: kernel_size must be odd, got {kernel_size}")
    return cv2.GaussianBlur(img, (kernel_size, kernel_size), sigma)

"""PSNR and SSIM for image restoration, in the BasicSR / MATLAB convention.

Images are scored as uint8 (clamped to [0, 1], x255, rounded), with `crop_border` pixels removed per edge and
optionally on the BT.601 Y channel, in float64. SSIM uses an 11x11 Gaussian window (sigma 1.5) and keeps the
"valid" region only, which is what the MATLAB reference of Wang et al. computes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import cv2
import numpy as np
import torch

Image = np.ndarray | torch.Tensor

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
# BT.601 luma on [0, 1] RGB, giving Y in [16, 235] (MATLAB rgb2ycbcr).
_Y_WEIGHTS = np.array([65.481, 128.553, 24.966], dtype=np.float64)


def to_uint8_hwc(img: Image) -> np.ndarray:
    """HWC uint8 RGB array or CHW float tensor in [0, 1] -> float64 [H, W, C] holding uint8 values."""
    if isinstance(img, torch.Tensor):
        if img.ndim != 3:
            raise ValueError(f"tensor images must be [C, H, W] floats in [0, 1], found {list(img.shape)}")
        # Same quantisation as BasicSR's tensor2img: clamp, x255 and round half to even in float32.
        arr = img.detach().float().cpu().clamp(0, 1).permute(1, 2, 0).numpy()
        return np.round(arr * 255.0).astype(np.float64)
    if isinstance(img, np.ndarray):
        if img.dtype != np.uint8 or img.ndim not in (2, 3):
            raise ValueError(
                f"numpy images must be uint8 [H, W, C] or [H, W], found {img.dtype} {list(img.shape)}"
            )
        return (img[:, :, None] if img.ndim == 2 else img).astype(np.float64)
    raise TypeError(f"expected a numpy uint8 array or a torch tensor, found {type(img).__name__}")


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """BT.601 luma of an RGB image with values in [0, 255]: [H, W, 3] -> [H, W, 1], float64."""
    return (16.0 + img @ (_Y_WEIGHTS / 255.0))[:, :, None]


def _prepare(img: Image, ref: Image, crop_border: int, test_y_channel: bool) -> tuple[np.ndarray, np.ndarray]:
    """Quantise both images, crop the border and optionally take the Y channel."""
    a, b = to_uint8_hwc(img), to_uint8_hwc(ref)
    if a.shape != b.shape:
        raise ValueError(f"image shapes differ: {list(a.shape)} (HWC) vs reference {list(b.shape)}")
    if crop_border < 0:
        raise ValueError(f"crop_border must be >= 0, got {crop_border}")
    if crop_border:
        a = a[crop_border:-crop_border, crop_border:-crop_border]
        b = b[crop_border:-crop_border, crop_border:-crop_border]
    if a.size == 0:  # b was cropped like a
        raise ValueError(f"crop_border={crop_border} leaves nothing of an image of shape {list(b.shape)}")
    if test_y_channel:
        if a.shape[2] != 3:
            raise ValueError(f"test_y_channel needs 3-channel RGB images, found {a.shape[2]} channels")
        a, b = rgb_to_y(a), rgb_to_y(b)
    return a, b


def psnr(img: Image, ref: Image, crop_border: int = 0, test_y_channel: bool = False) -> float:
    """Peak signal-to-noise ratio in dB on the uint8 scale (inf for identical images)."""
    a, b = _prepare(img, ref, crop_border, test_y_channel)
    mse = np.mean((a - b) ** 2)
    return float("inf") if mse == 0 else float(10.0 * np.log10(255.0**2 / mse))


def _ssim_channel(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of one [H, W] float64 channel, averaged over the valid region of the Gaussian window."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    kernel = cv2.getGaussianKernel(SSIM_WINDOW, SSIM_SIGMA)
    window = kernel @ kernel.T  # [11, 11], sums to 1
    r = SSIM_WINDOW // 2

    def blur(x: np.ndarray) -> np.ndarray:
        # Border handling is irrelevant: only outputs whose window lies inside the image are kept.
        return cv2.filter2D(x, -1, window)[r:-r, r:-r]

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(ssim_map.mean())


def ssim(img: Image, ref: Image, crop_border: int = 0, test_y_channel: bool = False) -> float:
    """Structural similarity (MATLAB reference), averaged over channels."""
    a, b = _prepare(img, ref, crop_border, test_y_channel)
    if min(a.shape[:2]) < SSIM_WINDOW:
        raise ValueError(
            f"SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW} after cropping, found {a.shape[:2]}"
        )
    return float(np.mean([_ssim_channel(a[:, :, c], b[:, :, c]) for c in range(a.shape[2])]))


class RestorationEvaluator:
    """Mean per-image PSNR and SSIM over a restoration set."""

    def __init__(
        self, crop_border: int = 0, test_y_channel: bool = False, print_fn: Callable[[str], None] = print
    ) -> None:
        self.crop_border = crop_border
        self.test_y_channel = test_y_channel
        self.print_fn = print_fn

    def process(self, sample: dict) -> tuple[float, float]:
        """Score one image: sample `pred` and `gt` are [3, H, W] floats in [0, 1] -> (psnr, ssim)."""
        kwargs = {"crop_border": self.crop_border, "test_y_channel": self.test_y_channel}
        return psnr(sample["pred"], sample["gt"], **kwargs), ssim(sample["pred"], sample["gt"], **kwargs)

    def compute(self, records: Sequence[tuple[float, float]]) -> dict[str, float]:
        """Average the per-image scores -> {"psnr", "ssim"}."""
        if not records:
            raise ValueError("RestorationEvaluator.compute got no records: no image was processed")
        scores = np.asarray(records, dtype=np.float64)  # [num_images, 2]
        metrics = {"psnr": float(scores[:, 0].mean()), "ssim": float(scores[:, 1].mean())}
        channel = "Y" if self.test_y_channel else "RGB"
        self.print_fn(
            f"Restoration on {len(records)} images ({channel}, crop_border={self.crop_border}): "
            f"PSNR {metrics['psnr']:.4f} dB, SSIM {metrics['ssim']:.4f}"
        )
        return metrics

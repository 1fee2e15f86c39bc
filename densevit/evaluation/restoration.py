"""PSNR and SSIM for image restoration, in the BasicSR / MATLAB convention.

Images are scored as uint8 (clamped to [0, 1], x255, rounded), with `crop_border` pixels removed per edge and
optionally on the BT.601 Y channel, in float64. SSIM uses an 11x11 Gaussian window (sigma 1.5) and keeps the
"valid" region only, which is what the MATLAB reference of Wang et al. computes, per channel, channels averaged.

``ssim_matlab_3d`` is what MATLAB's ``ssim(A, ref)`` computes on an RGB array: the array is one H x W x 3 volume
filtered by an 11x11x11 Gaussian (sigma 1.5) with replicated borders, the SSIM map keeps every voxel ("same" size)
and is averaged. The deblurring / real-denoising papers (Restormer GoPro 0.961, SIDD 0.960) report this one; the
per-channel SSIM of the same outputs is lower (0.9496 / 0.9225 in mmagic's re-evaluation).
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
    """HWC uint8 RGB array, CHW uint8 tensor or CHW float tensor in [0, 1] -> float64 [H, W, C] of uint8 values."""
    if isinstance(img, torch.Tensor):
        if img.ndim != 3:
            raise ValueError(f"tensor images must be [C, H, W] (uint8, or floats in [0, 1]), found {list(img.shape)}")
        if img.dtype == torch.uint8:
            return img.detach().cpu().permute(1, 2, 0).numpy().astype(np.float64)
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


def _mean_ssim(a: np.ndarray, b: np.ndarray, blur: Callable[[np.ndarray], np.ndarray]) -> float:
    """Mean of the SSIM map of two float64 arrays, with local statistics from the Gaussian filter ``blur``."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(ssim_map.mean())


def _ssim_channel(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of one [H, W] float64 channel, averaged over the valid region of the Gaussian window."""
    kernel = cv2.getGaussianKernel(SSIM_WINDOW, SSIM_SIGMA)
    window = kernel @ kernel.T  # [11, 11], sums to 1
    r = SSIM_WINDOW // 2

    def blur(x: np.ndarray) -> np.ndarray:
        # Border handling is irrelevant: only outputs whose window lies inside the image are kept.
        return cv2.filter2D(x, -1, window)[r:-r, r:-r]

    return _mean_ssim(a, b, blur)


def _gaussian_3d(x: np.ndarray) -> np.ndarray:
    """[H, W, C] float64 filtered by the separable 11x11x11 Gaussian (sigma 1.5), borders replicated, same size."""
    k = cv2.getGaussianKernel(SSIM_WINDOW, SSIM_SIGMA)  # [11, 1], sums to 1
    r = SSIM_WINDOW // 2
    planes = np.stack([cv2.sepFilter2D(x[:, :, c], -1, k, k, borderType=cv2.BORDER_REPLICATE)
                       for c in range(x.shape[2])], axis=2)
    taps = np.clip(np.arange(x.shape[2])[:, None] + np.arange(-r, r + 1)[None, :], 0, x.shape[2] - 1)  # [C, 11]
    return np.einsum("hwct,t->hwc", planes[:, :, taps], k[:, 0])


def ssim_matlab_3d(img: Image, ref: Image, crop_border: int = 0, test_y_channel: bool = False) -> float:
    """MATLAB ``ssim(A, ref)`` of an RGB (or Y) array taken as one volume (module doc)."""
    a, b = _prepare(img, ref, crop_border, test_y_channel)
    return _mean_ssim(a, b, _gaussian_3d)


def ssim(img: Image, ref: Image, crop_border: int = 0, test_y_channel: bool = False) -> float:
    """Structural similarity (MATLAB reference), averaged over channels."""
    a, b = _prepare(img, ref, crop_border, test_y_channel)
    if min(a.shape[:2]) < SSIM_WINDOW:
        raise ValueError(
            f"SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW} after cropping, found {a.shape[:2]}"
        )
    return float(np.mean([_ssim_channel(a[:, :, c], b[:, :, c]) for c in range(a.shape[2])]))


def describe_convention(crop_border: int, test_y_channel: bool, ssim_3d: bool) -> str:
    """The scoring convention in words, printed with the figures and saved with them."""
    channel = "Y (BT.601, unrounded)" if test_y_channel else "RGB"
    kind = "MATLAB ssim on the array as a volume (11x11x11)" if ssim_3d else "per channel, valid window (BasicSR)"
    return f"uint8, {channel}, crop_border {crop_border}; SSIM {kind}; per image, then mean"


class RestorationEvaluator:
    """Mean per-image PSNR and SSIM, per test set (``set_name`` of the samples) and over all images.

    Samples carry ``restored`` and ``gt``: [3, H, W] uint8 tensors (or floats in [0, 1], quantised as BasicSR
    does). ``ssim_3d`` switches SSIM to MATLAB's volume SSIM (``ssim_matlab_3d``). The metrics hold ``psnr`` /
    ``ssim`` over all images, ``<set>/psnr`` / ``<set>/ssim`` per set when there are several, and ``convention``.
    """

    def __init__(
        self,
        crop_border: int = 0,
        test_y_channel: bool = False,
        ssim_3d: bool = False,
        print_fn: Callable[[str], None] = print,
    ) -> None:
        if crop_border < 0:
            raise ValueError(f"RestorationEvaluator: crop_border must be >= 0, got {crop_border}")
        self.crop_border = crop_border
        self.test_y_channel = test_y_channel
        self.ssim_3d = ssim_3d
        self.print_fn = print_fn

    @property
    def convention(self) -> str:
        """How the figures are computed."""
        return describe_convention(self.crop_border, self.test_y_channel, self.ssim_3d)

    def process(self, sample: dict) -> tuple[str, float, float]:
        """Score one image -> (set name, psnr, ssim)."""
        for key in ("restored", "gt"):
            if key not in sample:
                raise KeyError(f"RestorationEvaluator: the sample has no {key!r} (keys: {sorted(sample)})")
        kwargs = {"crop_border": self.crop_border, "test_y_channel": self.test_y_channel}
        ssim_fn = ssim_matlab_3d if self.ssim_3d else ssim
        pred, gt = sample["restored"], sample["gt"]
        try:
            scores = psnr(pred, gt, **kwargs), ssim_fn(pred, gt, **kwargs)
        except ValueError as err:
            raise ValueError(f"RestorationEvaluator: image {sample.get('img_path')}: {err}") from err
        return str(sample.get("set_name", "")), *scores

    def compute(self, records: Sequence[tuple[str, float, float]]) -> dict[str, float | str]:
        """Average the per-image scores, per set and over all -> metrics (module doc)."""
        if not records:
            raise ValueError("RestorationEvaluator.compute got no records: no image was processed")
        sets = sorted({r[0] for r in records})
        metrics: dict[str, float | str] = {}
        lines = []
        for name in sets if len(sets) > 1 else []:
            scores = np.asarray([r[1:] for r in records if r[0] == name], dtype=np.float64)
            metrics[f"{name}/psnr"], metrics[f"{name}/ssim"] = (float(v) for v in scores.mean(axis=0))
            lines.append(f"  {name}: {len(scores)} images, PSNR {scores[:, 0].mean():.4f} dB, "
                         f"SSIM {scores[:, 1].mean():.4f}")
        scores = np.asarray([r[1:] for r in records], dtype=np.float64)  # [num_images, 2]
        metrics["psnr"], metrics["ssim"] = float(scores[:, 0].mean()), float(scores[:, 1].mean())
        metrics["convention"] = self.convention
        where = f" ({sets[0]})" if len(sets) == 1 and sets[0] else ""
        self.print_fn(f"Restoration on {len(records)} images{where}: PSNR {metrics['psnr']:.4f} dB, "
                      f"SSIM {metrics['ssim']:.4f} [{self.convention}]" + "".join(f"\n{line}" for line in lines))
        return metrics

"""PSNR / SSIM against a straightforward numpy reimplementation of the BasicSR / MATLAB convention."""

import math

import numpy as np
import pytest
import scipy.ndimage
import torch

from densevit.evaluation.restoration import RestorationEvaluator, psnr, ssim, ssim_matlab_3d


def ref_luma(img: np.ndarray) -> np.ndarray:
    """BT.601 Y of RGB values in [0, 255], written out per channel."""
    r, g, b = img[..., 0] / 255.0, img[..., 1] / 255.0, img[..., 2] / 255.0
    return (16.0 + 65.481 * r + 128.553 * g + 24.966 * b)[..., None]


def ref_prepare(a: np.ndarray, b: np.ndarray, crop: int, y: bool) -> tuple[np.ndarray, np.ndarray]:
    h, w = a.shape[:2]
    a = a[crop : h - crop, crop : w - crop].astype(np.float64)
    b = b[crop : h - crop, crop : w - crop].astype(np.float64)
    return (ref_luma(a), ref_luma(b)) if y else (a, b)


def ref_psnr(a: np.ndarray, b: np.ndarray, crop: int = 0, y: bool = False) -> float:
    a, b = ref_prepare(a, b, crop, y)
    return 20.0 * math.log10(255.0 / math.sqrt(np.mean((a - b) ** 2)))


def ref_ssim(a: np.ndarray, b: np.ndarray, crop: int = 0, y: bool = False) -> float:
    """Wang et al.'s SSIM with an explicit valid-mode 11x11 Gaussian correlation over sliding windows."""
    a, b = ref_prepare(a, b, crop, y)
    g = np.exp(-((np.arange(11) - 5.0) ** 2) / (2 * 1.5**2))
    window = np.outer(g, g) / np.outer(g, g).sum()

    def filt(x: np.ndarray) -> np.ndarray:
        return np.einsum("ijkl,kl->ij", np.lib.stride_tricks.sliding_window_view(x, (11, 11)), window)

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    values = []
    for c in range(a.shape[2]):
        x, z = a[:, :, c], b[:, :, c]
        mx, mz = filt(x), filt(z)
        vx, vz, cxz = filt(x * x) - mx**2, filt(z * z) - mz**2, filt(x * z) - mx * mz
        values.append(np.mean((2 * mx * mz + c1) * (2 * cxz + c2) / ((mx**2 + mz**2 + c1) * (vx + vz + c2))))
    return float(np.mean(values))


@pytest.fixture
def pair() -> tuple[np.ndarray, np.ndarray]:
    """A smooth random image and a noisy copy, HWC uint8 RGB."""
    rng = np.random.default_rng(0)
    base = rng.uniform(0, 255, (6, 5, 3)).repeat(8, 0).repeat(8, 1)  # [48, 40, 3] blocks
    gt = np.clip(base + rng.normal(0, 10, base.shape), 0, 255).round().astype(np.uint8)
    pred = np.clip(gt + rng.normal(0, 12, gt.shape), 0, 255).round().astype(np.uint8)
    return pred, gt


def to_tensor(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(img).permute(2, 0, 1).float() / 255.0


@pytest.mark.parametrize("crop", [0, 4])
@pytest.mark.parametrize("y", [False, True])
def test_matches_reference(pair: tuple[np.ndarray, np.ndarray], crop: int, y: bool) -> None:
    pred, gt = pair
    expected_psnr, expected_ssim = ref_psnr(pred, gt, crop, y), ref_ssim(pred, gt, crop, y)
    assert 15 < expected_psnr < 35 and 0.2 < expected_ssim < 0.95
    assert psnr(pred, gt, crop, y) == pytest.approx(expected_psnr, rel=1e-12)
    assert ssim(pred, gt, crop, y) == pytest.approx(expected_ssim, abs=1e-10)
    # CHW float tensors in [0, 1] are quantised to the same uint8 values.
    assert psnr(to_tensor(pred), to_tensor(gt), crop, y) == psnr(pred, gt, crop, y)
    assert ssim(to_tensor(pred), to_tensor(gt), crop, y) == ssim(pred, gt, crop, y)


def test_tensor_inputs_are_clamped_and_rounded(pair: tuple[np.ndarray, np.ndarray]) -> None:
    pred, gt = pair
    raw = to_tensor(pred) * 1.3 - 0.15 + 0.3 / 255  # leaves [0, 1] and falls between uint8 levels
    quantised = np.clip(raw.permute(1, 2, 0).numpy(), 0, 1) * 255.0
    as_uint8 = np.rint(quantised).astype(np.uint8)
    assert psnr(raw, to_tensor(gt)) == pytest.approx(ref_psnr(as_uint8, gt), rel=1e-12)
    assert ssim(raw, to_tensor(gt)) == pytest.approx(ref_ssim(as_uint8, gt), abs=1e-10)


def test_identical_images(pair: tuple[np.ndarray, np.ndarray]) -> None:
    _, gt = pair
    assert psnr(gt, gt) == math.inf
    assert ssim(gt, gt) == pytest.approx(1.0, abs=1e-12)
    assert ssim(gt, gt, crop_border=3, test_y_channel=True) == pytest.approx(1.0, abs=1e-12)


def test_crop_border_ignores_the_border(pair: tuple[np.ndarray, np.ndarray]) -> None:
    _, gt = pair
    pred = gt.copy()
    pred[:3] = 255 - pred[:3]
    pred[:, -2:] = 0
    assert psnr(pred, gt) < 20
    assert psnr(pred, gt, crop_border=3) == math.inf
    assert ssim(pred, gt, crop_border=3) == pytest.approx(1.0, abs=1e-12)


def test_y_channel_on_constant_images() -> None:
    gt = np.broadcast_to(np.array([10, 20, 30], dtype=np.uint8), (16, 16, 3)).copy()
    pred = gt.copy()
    pred[..., 2] += 1  # blue only: Y moves by 24.966 / 255
    assert psnr(pred, gt) == pytest.approx(10 * math.log10(255**2 * 3), rel=1e-12)
    assert psnr(pred, gt, test_y_channel=True) == pytest.approx(
        20 * math.log10(255 * 255 / 24.966), rel=1e-12
    )


def test_bad_inputs() -> None:
    img = np.zeros((16, 16, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="shapes differ"):
        psnr(img, img[:8])
    with pytest.raises(ValueError, match="uint8"):
        psnr(img.astype(np.float32), img)
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(img, img, crop_border=3)
    with pytest.raises(ValueError, match="3-channel"):
        psnr(img[..., 0], img[..., 0], test_y_channel=True)


def ref_ssim_3d(a: np.ndarray, b: np.ndarray) -> float:
    """MATLAB's volume SSIM written with scipy: Gaussian sigma 1.5, radius 5 in all three axes, nearest borders."""
    a, b = a.astype(np.float64), b.astype(np.float64)

    def filt(x: np.ndarray) -> np.ndarray:
        return scipy.ndimage.gaussian_filter(x, 1.5, mode="nearest", truncate=5 / 1.5)

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    ma, mb = filt(a), filt(b)
    va, vb, cab = filt(a * a) - ma**2, filt(b * b) - mb**2, filt(a * b) - ma * mb
    return float(np.mean((2 * ma * mb + c1) * (2 * cab + c2) / ((ma**2 + mb**2 + c1) * (va + vb + c2))))


def test_ssim_matlab_3d_matches_scipy(pair: tuple[np.ndarray, np.ndarray]) -> None:
    pred, gt = pair
    expected = ref_ssim_3d(pred, gt)
    assert ssim_matlab_3d(pred, gt) == pytest.approx(expected, abs=1e-10)
    assert ssim_matlab_3d(gt, gt) == pytest.approx(1.0, abs=1e-12)
    assert abs(expected - ssim(pred, gt)) > 1e-3  # a different number from the per-channel SSIM


def chw(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))


def test_evaluator_averages_per_image_and_per_set(pair: tuple[np.ndarray, np.ndarray]) -> None:
    pred, gt = pair
    lines: list[str] = []
    evaluator = RestorationEvaluator(crop_border=2, test_y_channel=True, print_fn=lines.append)
    images = [pred, np.flip(pred, 1), gt]
    samples = [
        {"restored": chw(images[0]), "gt": chw(gt), "set_name": "Set5"},
        {"restored": to_tensor(images[1].copy()), "gt": chw(gt), "set_name": "Set5"},  # float in [0, 1] too
        {"restored": chw(images[2]), "gt": chw(gt), "set_name": "Set14"},
    ]
    metrics = evaluator.compute([evaluator.process(s) for s in samples])
    psnrs = [ref_psnr(p, gt, 2, True) for p in images[:2]]
    ssims = [ref_ssim(p, gt, 2, True) for p in images]
    assert metrics["Set5/psnr"] == pytest.approx(np.mean(psnrs), rel=1e-12)
    assert metrics["Set5/ssim"] == pytest.approx(np.mean(ssims[:2]), abs=1e-10)
    assert metrics["Set14/psnr"] == math.inf and metrics["Set14/ssim"] == pytest.approx(1.0)
    assert metrics["ssim"] == pytest.approx(np.mean(ssims), abs=1e-10)
    assert metrics["convention"] == "uint8, Y (BT.601, unrounded), crop_border 2; SSIM per channel, valid window " \
                                    "(BasicSR); per image, then mean"
    assert "3 images" in lines[0] and "Set5: 2 images" in lines[0] and metrics["convention"] in lines[0]


def test_evaluator_3d_option_and_errors(pair: tuple[np.ndarray, np.ndarray]) -> None:
    pred, gt = pair
    evaluator = RestorationEvaluator(ssim_3d=True, print_fn=lambda _: None)
    metrics = evaluator.compute([evaluator.process({"restored": chw(pred), "gt": chw(gt), "set_name": "GoPro"})])
    assert metrics["ssim"] == pytest.approx(ref_ssim_3d(pred, gt), abs=1e-10)
    assert "MATLAB ssim on the array as a volume" in metrics["convention"]
    with pytest.raises(ValueError, match=r"image a\.png: image shapes differ"):
        evaluator.process({"restored": chw(pred[:8]), "gt": chw(gt), "img_path": "a.png"})
    with pytest.raises(KeyError, match="no 'restored'"):
        evaluator.process({"gt": chw(gt)})

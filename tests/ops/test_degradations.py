"""MATLAB-style bicubic resizing against weights worked out by hand; the Gaussian-noise test protocol."""

from __future__ import annotations

import numpy as np
import pytest

from densevit.ops.degradations import cubic, gaussian_blur, imresize, resize_contributions, test_noise

# A column of 8 pixels (1-based x1..x8 in the comments below).
COLUMN = np.array([10, 20, 40, 80, 160, 0, 30, 90], dtype=np.float64)[:, None]


def test_cubic_kernel_values() -> None:
    """Keys' kernel with a = -0.5: 1.5|x|^3 - 2.5|x|^2 + 1 inside 1, -0.5|x|^3 + 2.5|x|^2 - 4|x| + 2 up to 2."""
    x = np.array([0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.25, -0.5])
    expected = [1.0, 0.8671875, 0.5625, 0.2265625, 0.0, -0.0703125, -0.0625, -0.0234375, 0.0, 0.0, 0.5625]
    np.testing.assert_array_equal(cubic(x), expected)


def test_halving_matches_hand_computation() -> None:
    """Scale 1/2: kernel width 8, h(d) = cubic(d / 2) / 2; output 1 sits at u = 1.5, taps -3..6 (1-based).

    Distances 4.5 .. -4.5 give cubic(2.25, 1.75, 1.25, 0.75, 0.25, ...) = 0, -0.0234375, -0.0703125, 0.2265625,
    0.8671875 and mirrored; symmetric padding folds taps -2, -1, 0 onto x3, x2, x1. Normalised (sum 2):
    out1 = 0.546875 x1 + 0.3984375 x2 + 0.1015625 x3 - 0.03515625 x4 - 0.01171875 x5.
    Output 2 sits at u = 3.5, taps -1..8: tap 0 folds onto x1, giving
    out2 = -0.046875 x1 + 0.11328125 x2 + 0.43359375 (x3 + x4) + 0.11328125 x5 - 0.03515625 x6 - 0.01171875 x7.
    """
    x1, x2, x3, x4, x5, x6, x7, _ = COLUMN[:, 0]
    out1 = 0.546875 * x1 + 0.3984375 * x2 + 0.1015625 * x3 - 0.03515625 * x4 - 0.01171875 * x5
    out2 = (-0.046875 * x1 + 0.11328125 * x2 + 0.43359375 * (x3 + x4) + 0.11328125 * x5 - 0.03515625 * x6
            - 0.01171875 * x7)
    assert out1 == 12.8125 and out2 == 71.6015625
    out = imresize(COLUMN, 0.5)
    assert out.shape == (4, 1) and out.dtype == np.float64
    assert out[0, 0] == pytest.approx(out1, abs=1e-12) and out[1, 0] == pytest.approx(out2, abs=1e-12)
    # uint8 in, uint8 out: rounded half away from zero (12.8125 -> 13, 71.6 -> 72)
    assert imresize(COLUMN.astype(np.uint8), 0.5)[:2, 0].tolist() == [13, 72]


def test_doubling_matches_hand_computation() -> None:
    """Scale 2: plain cubic, output 1 at u = 0.75, taps -2..3 with weights 0, -0.0234375, 0.2265625, 0.8671875,
    -0.0703125, 0; taps -1, 0 fold onto x2, x1: out1 = 1.09375 x1 - 0.09375 x2."""
    weights, indexes = resize_contributions(8, 16, 2.0)
    np.testing.assert_array_equal(weights[0], [0.0, -0.0234375, 0.2265625, 0.8671875, -0.0703125, 0.0])
    assert indexes[0].tolist() == [2, 1, 0, 0, 1, 2]  # 0-based
    out = imresize(COLUMN, 2.0)
    assert out.shape == (16, 2)
    assert out[0, 0] == pytest.approx(1.09375 * 10 - 0.09375 * 20, abs=1e-12)
    np.testing.assert_allclose(out[:, 0], out[:, 1])  # a column of width 1 stays itself


def test_rows_and_columns_and_sizes() -> None:
    rng = np.random.default_rng(0)
    img = rng.uniform(0, 1, (13, 10, 3))
    out = imresize(img, 1 / 3)
    assert out.shape == (5, 4, 3)  # ceil(13 / 3), ceil(10 / 3)
    # separable: resizing the transpose gives the transpose
    np.testing.assert_allclose(imresize(img.transpose(1, 0, 2), 1 / 3), out.transpose(1, 0, 2), atol=1e-12)
    np.testing.assert_allclose(imresize(np.full((12, 9), 0.3), 0.25), 0.3, atol=1e-12)  # constants stay
    with pytest.raises(ValueError, match="scale must be positive"):
        imresize(img, 0)


def test_test_noise_is_the_restormer_protocol() -> None:
    clean = np.random.default_rng(1).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    clean[0, 0] = (0, 255, 0)
    noisy = test_noise(clean, 50)
    assert noisy.dtype == np.float32
    np.testing.assert_array_equal(noisy, test_noise(clean, 50))  # same seed, same noise, every time
    # what Restormer's test script computes with the global generator
    state = np.random.get_state()
    np.random.seed(seed=0)
    expected = np.float32(clean) / 255.0
    expected += np.random.normal(0, 50 / 255.0, expected.shape)
    np.random.set_state(state)
    np.testing.assert_array_equal(noisy, expected)
    assert noisy.min() < 0 and noisy.max() > 1  # neither clipped nor quantised
    assert not np.array_equal(noisy, test_noise(clean, 50, seed=1))
    with pytest.raises(TypeError, match="uint8"):
        test_noise(clean.astype(np.float32), 25)


def test_gaussian_blur_keeps_constants() -> None:
    np.testing.assert_allclose(gaussian_blur(np.full((16, 16, 3), 0.5, np.float32), 1.2), 0.5, atol=1e-6)
    with pytest.raises(ValueError, match="odd"):
        gaussian_blur(np.zeros((8, 8), np.float32), 1.0, kernel_size=4)

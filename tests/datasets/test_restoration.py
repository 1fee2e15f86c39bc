"""Paired restoration folders in the users' layouts, aligned crops, synthetic degradations, and the errors."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from densevit.datasets.restoration import (
    BicubicDownsample,
    GaussianNoise,
    PairedImageDataset,
    augment,
    match_pairs,
)
from densevit.ops.degradations import imresize, test_noise


def write(path: Path, image: np.ndarray) -> np.ndarray:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image[..., ::-1])
    return image


def random_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def hwc(t) -> np.ndarray:
    return t.numpy().transpose(1, 2, 0)


@pytest.fixture
def div2k(tmp_path: Path) -> Path:
    """HR/000{1,2}.png and LR_bicubic/X2/000{1,2}x2.png, HR = LR with each pixel repeated 2x2 (so alignment shows)."""
    for i in (1, 2):
        lr = write(tmp_path / "LR_bicubic" / "X2" / f"000{i}x2.png", random_image(12, 16, i))
        write(tmp_path / "HR" / f"000{i}.png", lr.repeat(2, 0).repeat(2, 1))
    return tmp_path


def test_sr_pairs_by_name_template(div2k: Path) -> None:
    ds = PairedImageDataset(div2k / "HR", div2k / "LR_bicubic" / "X2", lq_name="{}x2", scale=2, name="DIV2K")
    assert len(ds) == 2
    item = ds[1]
    sample = item["data_samples"]
    assert item["inputs"].shape == (3, 12, 16) and sample["gt"].shape == (3, 24, 32)
    assert sample["img_path"].endswith("0002x2.png") and sample["gt_path"].endswith("0002.png")
    assert sample["scale"] == 2 and sample["set_name"] == "DIV2K" and sample["img_shape"] == (12, 16)


@pytest.mark.parametrize("cache_images", [False, True])
def test_aligned_crops_flips_and_rotations(div2k: Path, cache_images: bool) -> None:
    ds = PairedImageDataset(div2k / "HR", div2k / "LR_bicubic" / "X2", lq_name="{}x2", scale=2, crop_size=8,
                            flip=True, rot90=True, cache_images=cache_images)
    np.random.seed(0)
    for _ in range(10):
        item = ds[0]
        lq, gt = hwc(item["inputs"]), hwc(item["data_samples"]["gt"])
        assert lq.shape == (4, 4, 3) and gt.shape == (8, 8, 3)
        np.testing.assert_array_equal(gt, lq.repeat(2, 0).repeat(2, 1))  # the same region, flipped / turned alike
    seen = set()
    for _ in range(40):
        a, b = augment([np.arange(4).reshape(2, 2, 1)] * 2)
        np.testing.assert_array_equal(a, b)
        seen.add(a.tobytes())
    assert len(seen) == 8  # the dihedral group


def test_odd_ground_truth_is_cropped_to_the_scale(tmp_path: Path) -> None:
    """Set14-style: a 25x33 ground truth with a 12x16 x2 input keeps its top-left 24x32."""
    hr = write(tmp_path / "HR" / "baboon.png", random_image(25, 33))
    write(tmp_path / "LR" / "baboonx2.png", random_image(12, 16))
    item = PairedImageDataset(tmp_path / "HR", tmp_path / "LR", lq_name="{}x2", scale=2)[0]
    np.testing.assert_array_equal(hwc(item["data_samples"]["gt"]), hr[:24, :32])


def test_gopro_sequences_and_sidd_names(tmp_path: Path) -> None:
    for seq in ("GOPR0384_11_00", "GOPR0385_11_01"):
        for i in (1, 2):
            write(tmp_path / "test" / seq / "sharp" / f"00000{i}.png", random_image(16, 16, i))
            write(tmp_path / "test" / seq / "blur" / f"00000{i}.png", random_image(16, 16, i + 5))
    pairs = match_pairs(tmp_path / "test" / "*" / "sharp", tmp_path / "test" / "*" / "blur")
    assert len(pairs) == 4 and all(g.parent.parent == b.parent.parent for g, b in pairs)
    scene = tmp_path / "SIDD" / "Data" / "0001_001_S6"
    write(scene / "GT_SRGB_010.png", random_image(16, 16))
    write(scene / "NOISY_SRGB_010.png", random_image(16, 16, 1))
    [(gt, lq)] = match_pairs(tmp_path / "SIDD" / "Data" / "*", tmp_path / "SIDD" / "Data" / "*",
                             gt_name="GT_SRGB_{}", lq_name="NOISY_SRGB_{}")
    assert gt.name == "GT_SRGB_010.png" and lq.name == "NOISY_SRGB_010.png"


def test_unmatched_pairs_are_named(div2k: Path) -> None:
    write(div2k / "HR" / "0003.png", random_image(24, 32))
    with pytest.raises(FileNotFoundError, match=r"1 ground-truth image\(s\) in .*HR have no degraded image .*"
                                                 r"0003\.png \(expected 0003x2\.\* in .*X2\)"):
        PairedImageDataset(div2k / "HR", div2k / "LR_bicubic" / "X2", lq_name="{}x2", scale=2)
    (div2k / "HR" / "0003.png").unlink()
    write(div2k / "LR_bicubic" / "X2" / "0004x2.png", random_image(12, 16))
    with pytest.raises(FileNotFoundError, match=r"1 degraded image\(s\) .* no ground truth .*0004x2\.png"):
        PairedImageDataset(div2k / "HR", div2k / "LR_bicubic" / "X2", lq_name="{}x2", scale=2)


def test_sizes_disagreeing_with_the_scale_are_named(div2k: Path) -> None:
    ds = PairedImageDataset(div2k / "HR", div2k / "LR_bicubic" / "X2", lq_name="{}x2", scale=4)
    with pytest.raises(ValueError, match=r"ground truth .*0001\.png is 24x32 but the degraded image "
                                         r"\(.*0001x2\.png\) is 12x16; with scale 4 it must be 6x8"):
        ds[0]


def test_unreadable_image_is_named(div2k: Path) -> None:
    (div2k / "LR_bicubic" / "X2" / "0001x2.png").write_bytes(b"not a png")
    ds = PairedImageDataset(div2k / "HR", div2k / "LR_bicubic" / "X2", lq_name="{}x2", scale=2)
    with pytest.raises(OSError, match=r"0001x2\.png could not be decoded"):
        ds[0]


def test_synthetic_test_noise_is_the_papers_protocol(div2k: Path) -> None:
    ds = PairedImageDataset(div2k / "HR", degradations=[GaussianNoise(25)], seed=0)
    first, again = ds[0], ds[0]
    gt = hwc(first["data_samples"]["gt"])
    np.testing.assert_array_equal(first["inputs"].numpy(), again["inputs"].numpy())
    expected = test_noise(gt, 25) * np.float32(255)
    np.testing.assert_array_equal(hwc(first["inputs"]), expected)
    assert first["inputs"].dtype.is_floating_point and first["inputs"].min() < 0  # unclipped


def test_blind_training_noise_is_drawn_per_patch(div2k: Path) -> None:
    ds = PairedImageDataset(div2k / "HR", degradations=[GaussianNoise((0, 50))], crop_size=16, flip=True)
    np.random.seed(0)
    noise = [hwc(it["inputs"]) - hwc(it["data_samples"]["gt"]).astype(np.float32) for it in (ds[0], ds[0])]
    assert noise[0].shape == (16, 16, 3) and not np.allclose(noise[0].std(), noise[1].std())


def test_synthetic_bicubic_downsampling(tmp_path: Path) -> None:
    hr = write(tmp_path / "HR" / "img.png", random_image(26, 35))
    item = PairedImageDataset(tmp_path / "HR", degradations=[BicubicDownsample(2)], scale=2)[0]
    expected = imresize(hr[:26, :34], 0.5)  # modcrop to whole LR pixels, then MATLAB bicubic, uint8-rounded
    np.testing.assert_allclose(hwc(item["inputs"]), expected.astype(np.float32), atol=1e-4)
    np.testing.assert_array_equal(hwc(item["data_samples"]["gt"]), hr[:26, :34])


def test_argument_errors(div2k: Path) -> None:
    with pytest.raises(ValueError, match=r"give lq_dir .* or degradations"):
        PairedImageDataset(div2k / "HR")
    with pytest.raises(ValueError, match="crop_size 9 must be a multiple of the scale 2"):
        PairedImageDataset(div2k / "HR", div2k / "LR_bicubic" / "X2", scale=2, crop_size=9)
    with pytest.raises(ValueError, match="exactly once"):
        match_pairs(div2k / "HR", div2k / "LR_bicubic" / "X2", lq_name="x2")
    with pytest.raises(FileNotFoundError, match=r"image folder .*nope does not exist"):
        match_pairs(div2k / "nope", div2k / "HR")

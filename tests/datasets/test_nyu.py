"""NYUv2 split files, the NYU / folder depth datasets and the depth training augmentation."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from paths import SHARED_DATA, needs_sample

from densevit.datasets.demo import generate_demo_dataset
from densevit.datasets.depth_transforms import NYU_BORDER_CROP, depth_train_transforms
from densevit.datasets.nyu import DepthFolder, DepthSample, NYUDepth, parse_split_file, read_depth

SPLITS = SHARED_DATA / "nyu_splits"


# --- split files -------------------------------------------------------------------------------------------


@needs_sample(SPLITS)
def test_real_split_files_parse_as_distributed():
    train = parse_split_file(SPLITS / "nyu_train.txt")
    test = parse_split_file(SPLITS / "nyu_test.txt")
    assert (len(train), len(test)) == (24231, 654)
    # train lines start with "/" (stripped); test lines do not
    assert train[0] == DepthSample(Path("kitchen_0028b/rgb_00045.jpg"), Path("kitchen_0028b/sync_depth_00045.png"),
                                   518.8579)
    assert train[2].image == Path("playroom_0004/rgb_00113.jpg")
    assert test[0] == DepthSample(Path("bathroom/rgb_00045.jpg"), Path("bathroom/sync_depth_00045.png"), 518.8579)
    assert test[-1].image.parent == test[-1].depth.parent and test[-1].image.name.startswith("rgb_")
    assert not any(s.image.is_absolute() or s.depth.is_absolute() for s in (*train, *test))
    assert {s.focal for s in (*train[:50], *test[:50])} == {518.8579}


def test_split_file_none_depth_and_errors(tmp_path):
    good = tmp_path / "split.txt"
    good.write_text("/a/rgb_1.jpg None 518.8579\n\nb/rgb_2.jpg b/d_2.png 500\n")
    assert parse_split_file(good) == [DepthSample(Path("a/rgb_1.jpg"), None, 518.8579),
                                      DepthSample(Path("b/rgb_2.jpg"), Path("b/d_2.png"), 500.0)]
    bad = tmp_path / "bad.txt"
    bad.write_text("a.jpg a.png 1.0\na.jpg a.png\n")
    with pytest.raises(ValueError, match=r"bad.txt, line 2"):
        parse_split_file(bad)
    bad.write_text("a.jpg a.png f=518\n")
    with pytest.raises(ValueError, match="focal 'f=518'"):
        parse_split_file(bad)
    with pytest.raises(FileNotFoundError, match=r"missing\.txt"):
        parse_split_file(tmp_path / "missing.txt")


# --- a fake NYU tree -----------------------------------------------------------------------------------------


def write_pair(root: Path, scene: str, index: int, h: int = 48, w: int = 64, seed: int = 0) -> np.ndarray:
    """An RGB jpg and its uint16 millimetre depth in the NYU layout; returns the millimetres."""
    rng = np.random.default_rng(seed)
    (root / scene).mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(root / scene / f"rgb_{index:05d}.jpg"), rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
    mm = rng.integers(0, 10000, (h, w)).astype(np.uint16)
    cv2.imwrite(str(root / scene / f"sync_depth_{index:05d}.png"), mm)
    return mm


@pytest.fixture
def nyu_tree(tmp_path) -> tuple[Path, dict]:
    root = tmp_path / "nyu"
    depths = {("kitchen_0028b", 45): write_pair(root, "kitchen_0028b", 45, seed=1),
              ("bathroom", 7): write_pair(root, "bathroom", 7, seed=2)}
    (root / "nyu_train.txt").write_text(
        "/kitchen_0028b/rgb_00045.jpg /kitchen_0028b/sync_depth_00045.png 518.8579\n"
        "/bathroom/rgb_00007.jpg None 518.8579\n"
        "/bathroom/rgb_00007.jpg /bathroom/sync_depth_00007.png 518.8579\n"
    )
    return root, depths


def test_nyu_dataset_loads_images_and_millimetre_depths(nyu_tree):
    root, depths = nyu_tree
    ds = NYUDepth(root, root / "nyu_train.txt")
    assert len(ds) == 2 and ds.num_skipped == 1  # the None entry has no ground truth
    item = ds[1]
    image, sample = item["inputs"], item["data_samples"]
    assert image.dtype == torch.uint8 and image.shape == (3, 48, 64)
    expected = cv2.cvtColor(cv2.imread(str(root / "bathroom/rgb_00007.jpg")), cv2.COLOR_BGR2RGB)
    assert torch.equal(image, torch.from_numpy(expected).permute(2, 0, 1))
    assert sample["gt_depth"].dtype == torch.float32
    torch.testing.assert_close(sample["gt_depth"], torch.from_numpy(depths[("bathroom", 7)] / np.float32(1000)))
    assert sample["ori_shape"] == sample["img_shape"] == (48, 64)
    assert sample["focal"] == 518.8579 and sample["img_path"].endswith("bathroom/rgb_00007.jpg")
    assert ds.metainfo == {"depth_scale": 1000.0}


def test_missing_files_are_named(nyu_tree):
    root, _ = nyu_tree
    (root / "bathroom" / "sync_depth_00007.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"1 of 2 depth files .*bathroom/sync_depth_00007.png"):
        NYUDepth(root, root / "nyu_train.txt")
    with pytest.raises(FileNotFoundError, match="data_root"):
        NYUDepth(root / "nowhere", root / "nyu_train.txt")


def test_depth_png_must_be_16_bit(tmp_path):
    path = tmp_path / "d.png"
    cv2.imwrite(str(path), np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match=r"d.png: expected a single-channel 16-bit PNG"):
        read_depth(path, 1000.0)


def test_folder_dataset_with_kitti_scale(tmp_path):
    images, depths = tmp_path / "img", tmp_path / "depth"
    images.mkdir()
    depths.mkdir()
    raw = np.array([[256, 512], [0, 2560]], np.uint16)
    for name in ("a", "b"):
        cv2.imwrite(str(images / f"{name}.png"), np.zeros((2, 2, 3), np.uint8))
        cv2.imwrite(str(depths / f"{name}.png"), raw)
    ds = DepthFolder(images, depths, depth_scale=256.0, img_suffix=".png")
    assert len(ds) == 2
    torch.testing.assert_close(ds[0]["data_samples"]["gt_depth"], torch.tensor([[1.0, 2.0], [0.0, 10.0]]))
    (depths / "b.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"depth files .*b.png"):
        DepthFolder(images, depths, depth_scale=256.0, img_suffix=".png")


def test_demo_depth_split_loads_with_the_nyu_reader(tmp_path):
    root = generate_demo_dataset(tmp_path / "demo", num_train=2, num_val=1, image_size=64, tasks=("depth",),
                                 progress=False)
    ds = NYUDepth(root, root / "depth" / "val.txt")
    sample = ds[0]["data_samples"]
    assert sample["gt_depth"].shape == (64, 64) and 0.9 < sample["gt_depth"].min() < sample["gt_depth"].max() < 12.5
    assert sample["focal"] == pytest.approx(64.0)


# --- augmentation --------------------------------------------------------------------------------------------


def test_nyu_training_transform_crops_and_keeps_depth_values(tmp_path):
    root = tmp_path / "nyu"
    mm = write_pair(root, "office_0001", 1, h=480, w=640, seed=3)
    (root / "train.txt").write_text("office_0001/rgb_00001.jpg office_0001/sync_depth_00001.png 518.8579\n")
    transforms = depth_train_transforms(rotate_prob=1.0, color_prob=1.0)
    ds = NYUDepth(root, root / "train.txt", transforms=transforms)
    np.random.seed(0)
    first = ds[0]
    image, sample = first["inputs"], first["data_samples"]
    assert image.shape == (3, 416, 544) and sample["gt_depth"].shape == (416, 544)
    assert sample["ori_shape"] == (480, 640) and sample["img_shape"] == (416, 544)
    # nearest-neighbour geometry: every depth is an original value or 0 where rotation uncovered the border
    top, bottom, left, right = NYU_BORDER_CROP
    allowed = set((mm[top:bottom, left:right] / np.float32(1000)).astype(np.float32).ravel().tolist()) | {0.0}
    assert set(sample["gt_depth"].numpy().ravel().tolist()) <= allowed
    np.random.seed(0)
    again = ds[0]
    assert torch.equal(again["inputs"], image) and torch.equal(again["data_samples"]["gt_depth"], sample["gt_depth"])


def test_small_image_transform_resizes_without_crops():
    transforms = depth_train_transforms(resize=(32, 32), crop_size=None, border_crop=None, rotate_limit=0.0)
    transforms.set_random_seed(0)
    depth = np.tile(np.arange(64, dtype=np.float32), (64, 1))
    out = transforms(image=np.zeros((64, 64, 3), np.uint8), mask=depth)
    assert out["image"].shape == (32, 32, 3) and out["mask"].shape == (32, 32)
    assert set(np.unique(out["mask"]).tolist()) <= set(range(64))

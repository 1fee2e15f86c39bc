"""Segmentation datasets (folder of images + label PNGs, ADE20K layout) and the training transforms."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from densevit.datasets.ade20k import ADE20K, ADE20K_CLASSES, SegFolderDataset, read_label, reduce_zero_label
from densevit.datasets.demo import DEMO_CLASSES, generate_demo_dataset
from densevit.datasets.seg_transforms import (
    CatMaxRatioCrop,
    PhotoMetricDistortion,
    class_ratio_ok,
    seg_train_transforms,
)
from densevit.ops.resize import keep_ratio_size


def write_pair(root, split: str, stem: str, label: np.ndarray) -> None:
    """An ADE20K-layout image (random pixels) and its uint8 label PNG."""
    (root / "images" / split).mkdir(parents=True, exist_ok=True)
    (root / "annotations" / split).mkdir(parents=True, exist_ok=True)
    img = np.random.default_rng(0).integers(0, 256, (*label.shape, 3), dtype=np.uint8)
    cv2.imwrite(str(root / "images" / split / f"{stem}.jpg"), img)
    Image.fromarray(label).save(root / "annotations" / split / f"{stem}.png")


def test_reduce_zero_label_round_trip_on_uint8_png(tmp_path):
    raw = np.arange(256, dtype=np.uint8).reshape(16, 16)
    Image.fromarray(raw).save(tmp_path / "label.png")
    stored = read_label(tmp_path / "label.png")
    assert stored.dtype == np.uint8
    np.testing.assert_array_equal(stored, raw)
    reduced = reduce_zero_label(stored)
    expected = np.where(raw == 0, 255, np.where(raw == 255, 255, raw.astype(np.int64) - 1))
    np.testing.assert_array_equal(reduced, expected)
    # back to the stored convention (+1, ignore -> 0) for every value but the stored 255
    restored = np.where(reduced == 255, 0, reduced.astype(np.int64) + 1)
    np.testing.assert_array_equal(restored[raw != 255], raw[raw != 255])
    with pytest.raises(TypeError, match="uint8"):
        reduce_zero_label(raw.astype(np.uint16))


def test_ade20k_layout_item(tmp_path):
    label = np.zeros((20, 30), np.uint8)
    label[:10] = 1  # wall -> 0
    label[10:, :15] = 150  # flag -> 149
    write_pair(tmp_path, "validation", "ADE_val_00000001", label)
    dataset = ADE20K(tmp_path, split="validation")
    assert len(dataset) == 1 and dataset.metainfo["classes"] == ADE20K_CLASSES and len(ADE20K_CLASSES) == 150
    item = dataset[0]
    gt = item["data_samples"]["gt_sem_seg"].numpy()
    assert item["inputs"].shape == (3, 20, 30) and gt.dtype == np.int64
    assert (gt[:10] == 0).all() and (gt[10:, :15] == 149).all() and (gt[10:, 15:] == 255).all()
    assert item["data_samples"]["ori_shape"] == (20, 30) == item["data_samples"]["img_shape"]
    with pytest.raises(ValueError, match="split"):
        ADE20K(tmp_path, split="val")


def test_labels_outside_the_classes_fail_naming_file_and_values(tmp_path):
    label = np.full((8, 8), 3, np.uint8)
    label[0, 0], label[0, 1], label[0, 2] = 151, 200, 0  # 0 is ignored after reduce_zero_label; 151 and 200 are not
    write_pair(tmp_path, "training", "ADE_train_00000001", label)
    dataset = ADE20K(tmp_path, split="training")
    with pytest.raises(ValueError, match=r"ADE_train_00000001\.png holds values \[150, 199\] after reduce_zero"):
        dataset[0]
    folder = SegFolderDataset(tmp_path / "images" / "training", tmp_path / "annotations" / "training",
                              classes=("a", "b", "c"))
    with pytest.raises(ValueError, match=r"values \[3, 151, 200\].*classes 0\.\.2"):
        folder[0]


def test_missing_label_file_is_reported(tmp_path):
    write_pair(tmp_path, "training", "a", np.zeros((4, 4), np.uint8))
    (tmp_path / "annotations" / "training" / "a.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"1 of 1 images have no label file.*a\.png"):
        ADE20K(tmp_path)


def test_demo_semantic_maps_with_training_transforms(tmp_path):
    root = generate_demo_dataset(tmp_path / "demo", num_train=3, num_val=1, image_size=64, tasks=("semantic",),
                                 progress=False)
    classes = ("background", *DEMO_CLASSES)
    transforms = seg_train_transforms(scale=(64, 64), ratio_range=(0.5, 2.0), crop_size=48)
    dataset = SegFolderDataset(root / "train", root / "semantic" / "train", classes, transforms=transforms)
    raw = SegFolderDataset(root / "train", root / "semantic" / "train", classes)
    assert len(dataset) == 3
    for i in range(3):
        np.random.seed(i)
        first = dataset[i]
        np.random.seed(i)
        again = dataset[i]
        gt = first["data_samples"]["gt_sem_seg"]
        assert first["inputs"].shape == (3, 48, 48) and gt.shape == (48, 48)
        assert (first["inputs"] == again["inputs"]).all() and (gt == again["data_samples"]["gt_sem_seg"]).all()
        # nearest resizing invents no label; padding is the ignore value
        original = set(raw[i]["data_samples"]["gt_sem_seg"].unique().tolist())
        assert set(gt.unique().tolist()) <= original | {255}


def test_keep_ratio_size_matches_mmcv_rescale():
    assert keep_ratio_size(512, 683, (2048, 512)) == (512, 683)
    assert keep_ratio_size(1000, 3000, (2048, 512)) == (512, 1536)
    assert keep_ratio_size(1000, 5000, (2048, 512)) == (410, 2048)  # the long side bound wins
    assert keep_ratio_size(256, 256, (1024, 256)) == (256, 256)
    assert keep_ratio_size(300, 200, (2048, 512)) == (768, 512)


def test_cat_max_ratio_crop_avoids_single_class_crops():
    label = np.zeros((100, 100), np.uint8)
    label[:, 50:] = 1  # two halves: only crops straddling the middle hold both classes below 75 %
    image = np.zeros((100, 100, 3), np.uint8)
    assert not class_ratio_ok(label[:, :50], 0.75) and class_ratio_ok(label[:, 25:75], 0.75)
    assert not class_ratio_ok(np.full((4, 4), 255, np.uint8), 0.75)

    def crops(ratio: float) -> list[np.ndarray]:
        crop = CatMaxRatioCrop(50, cat_max_ratio=ratio)
        out = []
        for seed in range(20):
            crop.set_random_seed(seed)
            out.append(crop(image=image, mask=label)["mask"])
        return out

    constrained = crops(0.75)
    assert all(m.shape == (50, 50) for m in constrained)
    assert all(class_ratio_ok(m, 0.75) for m in constrained)
    assert not all(class_ratio_ok(m, 0.75) for m in crops(1.0))  # unconstrained crops often hold one class


def test_photometric_distortion_changes_colours_only():
    image = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    distort = PhotoMetricDistortion()
    changed = 0
    for seed in range(5):
        distort.set_random_seed(seed)
        out = distort(image=image)["image"]
        assert out.shape == image.shape and out.dtype == np.uint8
        changed += int(not np.array_equal(out, image))
    assert changed >= 3

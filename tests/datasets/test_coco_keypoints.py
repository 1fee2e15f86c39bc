"""Top-down COCO keypoint samples: the crop's joints land where the UDP affine says, flips swap the pairs, errors
name the file and key."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from paths import COCO_PERSON_MINI, needs_sample

from densevit.datasets.coco_keypoints import CocoKeypoints, TopDownAugment
from densevit.datasets.keypoint_info import COCO_KEYPOINTS
from densevit.ops.keypoints import box_to_center_scale, transform_points, udp_warp_matrix

MINI_ANN = COCO_PERSON_MINI / "annotations" / "person_keypoints_mini.json"
MINI_DETS = COCO_PERSON_MINI / "annotations" / "person_detections_mini.json"
MINI_IMAGES = COCO_PERSON_MINI / "images"
needs_mini = needs_sample(MINI_ANN)

# A distinct colour per joint, far apart from each other and from the black border.
COLOURS = np.array([[(37 * k) % 200 + 50, (91 * k) % 200 + 50, (53 * k + 120) % 200 + 50] for k in range(17)],
                   np.uint8)


def write_dots_dataset(root: Path, k: int = 17, category: dict | None = None) -> Path:
    """Two 240x320 PNG images with one person whose joints are coloured dots (radius 4); returns the ann file."""
    rng = np.random.default_rng(0)
    images, annotations = [], []
    for img_id in (1, 2):
        image = np.full((240, 320, 3), 10, np.uint8)
        grid = np.stack(np.meshgrid(np.arange(110, 211, 25), np.arange(40, 201, 32)), -1).reshape(-1, 2)
        joints = grid[rng.permutation(len(grid))[:k]].astype(np.float64)  # dots 25+ px apart never overlap
        for j, (x, y) in enumerate(joints):
            cv2.circle(image, (int(x), int(y)), 4, COLOURS[j].tolist(), -1)
        cv2.imwrite(str(root / f"{img_id}.png"), image[..., ::-1])
        x0, y0 = joints.min(0) - 5
        x1, y1 = joints.max(0) + 5
        visible = [2] * k
        visible[3] = 0  # one unlabelled joint
        kpts = [v for (x, y), vis in zip(joints, visible, strict=True) for v in (float(x), float(y), vis)]
        kpts[9:11] = [0.0, 0.0]
        images.append({"id": img_id, "file_name": f"{img_id}.png", "width": 320, "height": 240})
        annotations.append({"id": 10 + img_id, "image_id": img_id, "category_id": 1, "iscrowd": 0,
                            "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)], "area": 1000.0,
                            "keypoints": kpts, "num_keypoints": k - 1})
    category = category or {"id": 1, "name": "person", "keypoints": list(COCO_KEYPOINTS.names),
                            "skeleton": [[a + 1, b + 1] for a, b in COCO_KEYPOINTS.skeleton]}
    ann_file = root / "keypoints.json"
    ann_file.write_text(json.dumps({"images": images, "annotations": annotations, "categories": [category]}))
    return ann_file


@pytest.mark.parametrize("cache_images", [False, True])
def test_crop_joints_land_on_their_dots_under_flip_rotation_and_half_body(tmp_path: Path, cache_images: bool) -> None:
    ann_file = write_dots_dataset(tmp_path)
    augment = TopDownAugment(flip_prob=0.5, half_body_prob=0.5, rotate_prob=1.0, rotate_factor=60.0,
                             scale_range=(0.8, 1.2))
    ds = CocoKeypoints(ann_file, tmp_path, input_size=(256, 192), train=True, augment=augment,
                       cache_images=cache_images)
    np.random.seed(3)
    flips = 0
    for _ in range(12):
        for item in (ds[0], ds[1]):
            sample = item["data_samples"]
            crop = item["inputs"].numpy().transpose(1, 2, 0)
            assert crop.shape == (256, 192, 3) and crop.dtype == np.uint8
            flips += sample["flipped"]
            # Left/right swap with the flip: joint k of the crop is the dot drawn for flip_index[k] (or k).
            source = COCO_KEYPOINTS.flip_index if sample["flipped"] else range(17)
            kpts, visible = sample["keypoints"].numpy(), sample["keypoints_visible"].numpy()
            assert visible[source.index(3) if sample["flipped"] else 3] == 0
            for j, ((x, y), v) in enumerate(zip(kpts, visible, strict=True)):
                if v == 0 or not (2 <= x <= 189 and 2 <= y <= 253):
                    continue
                assert np.abs(crop[round(y), round(x)].astype(int) - COLOURS[source[j]]).max() <= 2, (j, x, y)
            assert sample["rotation"] != 0.0 and abs(sample["rotation"]) <= 60.0
    assert 0 < flips < 24


def test_evaluation_crop_is_the_udp_warp_of_the_box(tmp_path: Path) -> None:
    ann_file = write_dots_dataset(tmp_path)
    ds = CocoKeypoints(ann_file, tmp_path, input_size=(256, 192))
    item = ds[0]
    sample = item["data_samples"]
    assert sample["ann_id"] == 11 and sample["bbox_score"] == 1.0 and sample["rotation"] == 0.0
    assert "keypoints" not in sample
    center, scale = box_to_center_scale(sample["bbox"], aspect_ratio=0.75, padding=1.25)
    np.testing.assert_allclose(sample["center"], center)
    np.testing.assert_allclose(sample["scale"], scale)
    assert scale[0] / scale[1] == pytest.approx(0.75)
    image = cv2.imread(str(tmp_path / "1.png"))[..., ::-1]
    expected = cv2.warpAffine(image, udp_warp_matrix(center, scale, 0.0, (192, 256)), (192, 256),
                              flags=cv2.INTER_LINEAR)
    np.testing.assert_array_equal(item["inputs"].numpy().transpose(1, 2, 0), expected)
    # the box centre lands at the crop's centre, (w - 1) / 2, (h - 1) / 2
    np.testing.assert_allclose(transform_points(center, udp_warp_matrix(center, scale, 0.0, (192, 256))),
                               [95.5, 127.5])


@needs_mini
def test_real_sample_ground_truth_and_detector_boxes() -> None:
    train = CocoKeypoints(MINI_ANN, MINI_IMAGES, train=True)
    assert len(train) == 12 and train.skipped == {"no labelled keypoint": 2}
    assert train.keypoint_info == COCO_KEYPOINTS
    assert train.metainfo["keypoint_names"][0] == "nose" and train.metainfo["cat_ids"] == [1]
    # the 1.x box clipping: x2 = clip(x + w, 0, W - 1)
    last = next(i for i in train.instances if i["ann_id"] == 543117)
    assert last["bbox"][0] == pytest.approx(0.5) and last["bbox"][2] == pytest.approx(90.1)
    dets = CocoKeypoints(MINI_ANN, MINI_IMAGES, bbox_file=MINI_DETS)
    assert len(dets) == 118
    sample = dets[5]["data_samples"]
    assert sample["det_id"] == 5 and 0 < sample["bbox_score"] <= 1 and sample["img_shape"] == (256, 192)
    assert len(CocoKeypoints(MINI_ANN, MINI_IMAGES, bbox_file=MINI_DETS, bbox_score_thr=0.5)) < 118


def test_any_keypoint_set_from_the_category_and_config_fields(tmp_path: Path) -> None:
    names = ["head", "left_hand", "right_hand", "left_foot", "right_foot"]
    category = {"id": 3, "name": "figure", "keypoints": names, "skeleton": [[1, 2], [1, 3], [1, 4], [1, 5]]}
    ann_file = write_dots_dataset(tmp_path, k=5, category=category)
    for ann_data in [json.loads(ann_file.read_text())]:
        for ann in ann_data["annotations"]:
            ann["category_id"] = 3
        ann_file.write_text(json.dumps(ann_data))
    ds = CocoKeypoints(ann_file, tmp_path, train=True, sigmas=[0.05] * 5, upper_body=[0, 1, 2])
    info = ds.keypoint_info
    assert info.flip_pairs == ((1, 2), (3, 4)) and info.skeleton[0] == (0, 1) and info.upper_body == (0, 1, 2)
    assert ds[0]["data_samples"]["keypoints"].shape == (5, 2)
    with pytest.raises(ValueError, match="not COCO's 17"):
        CocoKeypoints(ann_file, tmp_path)


def test_errors_name_the_file_and_key(tmp_path: Path) -> None:
    ann_file = write_dots_dataset(tmp_path)
    with pytest.raises(ValueError, match=r"keypoints.json: category 'person' declares 17 keypoints .* "
                                         r"num_keypoints=16"):
        CocoKeypoints(ann_file, tmp_path, num_keypoints=16)
    with pytest.raises(ValueError, match=r"keypoints.json: KeypointInfo: flip_pairs \[\(1, 17\)\] out of range"):
        CocoKeypoints(ann_file, tmp_path, flip_pairs=[[1, 17]])
    data = json.loads(ann_file.read_text())
    data["annotations"][1]["keypoints"] = data["annotations"][1]["keypoints"][:48]
    short = tmp_path / "short.json"
    short.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"short.json: annotation 12 'keypoints' holds 48 values, expected 51"):
        CocoKeypoints(short, tmp_path)
    dets = tmp_path / "dets.json"
    dets.write_text(json.dumps([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 9, 9], "score": 0.9},
                                {"image_id": 7, "category_id": 1, "bbox": [0, 0, 9, 9], "score": 0.9}]))
    with pytest.raises(ValueError, match=r"box file .*dets.json: image ids \[7\] are not images of the annotation"):
        CocoKeypoints(ann_file, tmp_path, bbox_file=dets)
    with pytest.raises(ValueError, match="bbox_file is for evaluation"):
        CocoKeypoints(ann_file, tmp_path, train=True, bbox_file=dets)
    # an annotation whose labelled joints all lie outside its box's crop
    data = json.loads(ann_file.read_text())
    data["annotations"][0]["bbox"] = [0.0, 0.0, 20.0, 20.0]
    far = tmp_path / "far.json"
    far.write_text(json.dumps(data))
    ds = CocoKeypoints(far, tmp_path, train=True)
    assert len(ds) == 1 and ds.skipped == {"no labelled keypoint in the crop": 1}
    with pytest.raises(ValueError, match=r"far.json: annotation 11 \(image 1\) has no labelled keypoint inside"):
        CocoKeypoints(far, tmp_path, train=True, empty_crop="error")
    assert len(CocoKeypoints(far, tmp_path)) == 2  # evaluation keeps every box
    del data["images"][1]["width"]
    no_width = tmp_path / "no_width.json"
    no_width.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"no_width.json: images\[1\] lacks \['width'\]"):
        CocoKeypoints(no_width, tmp_path)


def test_augmentation_off_gives_the_evaluation_crop_and_crops_keep_the_input_aspect(tmp_path: Path) -> None:
    ann_file = write_dots_dataset(tmp_path)
    still = TopDownAugment(flip_prob=0.0, half_body_prob=0.0, shift_prob=0.0, scale_prob=0.0, rotate_prob=0.0)
    train = CocoKeypoints(ann_file, tmp_path, input_size=(128, 96), train=True, augment=still)
    test = CocoKeypoints(ann_file, tmp_path, input_size=(128, 96))
    a, b = train[0], test[0]
    np.testing.assert_allclose(a["data_samples"]["center"], b["data_samples"]["center"])
    np.testing.assert_allclose(a["data_samples"]["scale"], b["data_samples"]["scale"])
    np.testing.assert_array_equal(a["inputs"].numpy(), b["inputs"].numpy())
    moving = CocoKeypoints(ann_file, tmp_path, input_size=(128, 96), train=True,
                           augment=dict(half_body_prob=1.0, half_body_min_total=1, shift_prob=1.0))
    np.random.seed(0)
    for _ in range(10):
        w, h = moving[1]["data_samples"]["scale"]
        assert w / h == pytest.approx(0.75)

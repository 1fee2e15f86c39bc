"""Demo data: determinism, COCO validity, and agreement of every target with the scene it was rendered from."""

import json
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from densevit.datasets.demo import (
    DEMO_CATEGORY_IDS,
    DEMO_CLASSES,
    DEMO_TASKS,
    demo_scene,
    generate_demo_dataset,
    main,
    mask_to_segmentation,
)
from densevit.datasets.demo_scene import (
    DEMO_KEYPOINTS,
    object_masks,
    render_depth,
    render_visible_masks,
    sample_scene,
)
from densevit.ops.degradations import imresize

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

SEED, SIZE, NUM_TRAIN, NUM_VAL = 3, 128, 12, 4


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return generate_demo_dataset(tmp_path_factory.mktemp("demo") / "data", num_train=NUM_TRAIN, num_val=NUM_VAL,
                                 image_size=SIZE, seed=SEED, tasks=DEMO_TASKS, progress=False)


@pytest.fixture(scope="module")
def coco_train(dataset) -> COCO:
    return COCO(str(dataset / "annotations" / "instances_train.json"))


def _scene_annotations(coco: COCO, image_id: int) -> list[dict]:
    return sorted(coco.loadAnns(coco.getAnnIds(imgIds=image_id)), key=lambda a: a["id"])


def test_layout_and_meta(dataset):
    names = set(_files(dataset))
    for split, count in (("train", NUM_TRAIN), ("val", NUM_VAL)):
        stems = [f"{i:08d}" for i in range(1, count + 1)]
        assert {f"{split}/{s}.jpg" for s in stems} <= names
        assert {f"semantic/{split}/{s}.png" for s in stems} <= names
        assert {f"depth/{split}/{s}.png" for s in stems} <= names
        assert {f"restoration/{split}/{kind}/{s}.png" for s in stems for kind in ("gt", "lq")} <= names
        assert {f"restoration/{split}/lq_x2/{s}x2.png" for s in stems} <= names
        assert {f"annotations/{kind}_{split}.json" for kind in ("instances", "keypoints")} <= names
    meta = json.loads((dataset / "meta.json").read_text())
    assert meta["complete"] and meta["seed"] == SEED and meta["classes"] == list(DEMO_CLASSES)
    image = cv2.imread(str(dataset / "train" / "00000001.jpg"))
    assert image.shape == (SIZE, SIZE, 3)


def test_same_seed_gives_identical_bytes(dataset, tmp_path):
    again = generate_demo_dataset(tmp_path / "again", num_train=NUM_TRAIN, num_val=NUM_VAL, image_size=SIZE,
                                  seed=SEED, tasks=DEMO_TASKS, progress=False)
    assert _files(again) == _files(dataset)
    other = generate_demo_dataset(tmp_path / "other", num_train=2, num_val=0, image_size=SIZE, seed=SEED + 1,
                                  progress=False)
    assert (other / "train/00000001.jpg").read_bytes() != (dataset / "train/00000001.jpg").read_bytes()


def test_coco_json_matches_rendered_masks(coco_train):
    cat_ids = coco_train.getCatIds()
    assert cat_ids == list(DEMO_CATEGORY_IDS) and cat_ids != list(range(1, len(DEMO_CLASSES) + 1))
    assert [c["name"] for c in coco_train.loadCats(cat_ids)] == list(DEMO_CLASSES)
    kinds = Counter()
    for image_id in coco_train.getImgIds():
        scene = demo_scene(SEED, "train", image_id - 1, SIZE)
        anns = _scene_annotations(coco_train, image_id)
        masks = render_visible_masks(scene)
        assert len(anns) == len(scene.objects) >= 1
        for ann, obj, mask in zip(anns, scene.objects, masks, strict=True):
            kinds["rle" if isinstance(ann["segmentation"], dict) else "polygon"] += 1
            assert ann["category_id"] == DEMO_CATEGORY_IDS[obj.label] and ann["iscrowd"] == 0
            decoded = coco_train.annToMask(ann).astype(bool)
            assert (decoded & mask).sum() / (decoded | mask).sum() > 0.9
            assert ann["area"] == mask.sum()
            rows, cols = np.nonzero(mask)
            x0, y0 = cols.min(), rows.min()
            assert ann["bbox"] == [x0, y0, cols.max() + 1 - x0, rows.max() + 1 - y0]
    assert kinds["polygon"] > kinds["rle"] > 0  # polygons as in COCO, RLE only for masks with holes


def test_mask_to_segmentation_round_trips():
    square = np.zeros((20, 30), dtype=bool)
    square[3:9, 5:17] = True
    polygons = mask_to_segmentation(square)
    assert isinstance(polygons, list)
    decoded = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(polygons, 20, 30))).astype(bool)
    assert np.array_equal(decoded, square)  # pixel-edge polygons lose nothing
    ring = cv2.circle(np.zeros((40, 40), np.uint8), (20, 20), 12, 1, thickness=4).astype(bool)
    rle = mask_to_segmentation(ring)
    assert isinstance(rle, dict)
    assert np.array_equal(mask_utils.decode({"size": rle["size"], "counts": rle["counts"].encode()}), ring)


def test_semantic_map_matches_instances(dataset, coco_train):
    for image_id in coco_train.getImgIds():
        semantic = cv2.imread(str(dataset / f"semantic/train/{image_id:08d}.png"), cv2.IMREAD_UNCHANGED)
        expected = np.zeros((SIZE, SIZE), np.uint8)
        for ann in _scene_annotations(coco_train, image_id):
            expected[coco_train.annToMask(ann).astype(bool)] = DEMO_CATEGORY_IDS.index(ann["category_id"]) + 1
        assert semantic.dtype == np.uint8
        assert np.array_equal(semantic, expected)


def test_depth_map_is_room_plus_objects(dataset):
    overlaps = 0
    for index in range(40):  # more scenes than were written, so that overlaps surely occur
        scene = demo_scene(SEED, "val", index, SIZE)
        depth = render_depth(scene)
        bg = scene.background
        # Room geometry computed independently: floor z = f * h / (row - horizon), capped by the back wall.
        rows = np.arange(SIZE) + 0.5 - bg.horizon
        room = np.where(rows > 0, scene.focal * bg.camera_height / np.maximum(rows, 1e-9), np.inf)
        room = np.broadcast_to(np.minimum(room, bg.wall_depth)[:, None], (SIZE, SIZE))
        visible = render_visible_masks(scene)
        on_object = visible.any(0)
        np.testing.assert_allclose(depth[~on_object], room[~on_object], rtol=1e-6)
        for obj, mask, full in zip(scene.objects, visible, object_masks(scene), strict=True):
            assert np.all(depth[mask] == np.float32(obj.depth))
            assert np.all(obj.depth < room[full])  # cards stand in front of the floor and wall
        # Nearer objects hide farther ones: every pixel shows the nearest object covering it.
        covering = np.where(object_masks(scene), np.array([o.depth for o in scene.objects])[:, None, None], np.inf)
        np.testing.assert_allclose(depth[on_object], covering.min(0)[on_object], rtol=1e-6)
        overlaps += int((object_masks(scene).sum(0) > 1).any())
        if index >= NUM_VAL:
            continue
        stored = cv2.imread(str(dataset / f"depth/val/{index + 1:08d}.png"), cv2.IMREAD_UNCHANGED)
        assert stored.dtype == np.uint16
        assert np.abs(stored / 1000.0 - depth).max() <= 0.0005 + 1e-6
    assert overlaps >= 5
    lines = (dataset / "depth/val.txt").read_text().splitlines()
    assert lines[0] == f"val/00000001.jpg depth/val/00000001.png {float(SIZE):.4f}" and len(lines) == NUM_VAL


def test_keypoints_follow_coco_and_visibility(dataset):
    coco = COCO(str(dataset / "annotations" / "keypoints_train.json"))
    for cat in coco.loadCats(coco.getCatIds()):
        assert cat["keypoints"] == list(DEMO_KEYPOINTS[cat["name"]])
    counts = Counter()
    for image_id in coco.getImgIds():
        scene = demo_scene(SEED, "train", image_id - 1, SIZE)
        visible = render_visible_masks(scene)
        for index, ann in enumerate(_scene_annotations(coco, image_id)):
            points = np.array(ann["keypoints"], dtype=float).reshape(-1, 3)
            assert len(points) == len(DEMO_KEYPOINTS[DEMO_CLASSES[scene.objects[index].label]])
            assert ann["num_keypoints"] == (points[:, 2] > 0).sum()
            for (x, y, v), (ex, ey) in zip(points, scene.objects[index].keypoints, strict=True):
                counts[int(v)] += 1
                inside = 0 <= ex < SIZE and 0 <= ey < SIZE
                assert (v > 0) == inside
                if not inside:
                    assert x == y == 0
                    continue
                assert abs(x - (ex - 0.5)) < 0.01 and abs(y - (ey - 0.5)) < 0.01  # integer = pixel centre
                window = (slice(max(int(ey) - 1, 0), int(ey) + 2), slice(max(int(ex) - 1, 0), int(ex) + 2))
                assert visible[index][window].any() == (v == 2)
                if v == 1:  # hidden means a nearer object covers the spot
                    assert visible[index + 1:][(slice(None), *window)].any()
    assert counts[2] > counts[1] > 0


def test_keypoints_are_clockwise_from_top():
    for index in range(10):
        for obj in sample_scene(np.random.default_rng(index), 128, 128).objects:
            offsets = obj.keypoints - np.array(obj.center)
            clockwise = np.mod(np.arctan2(offsets[:, 0], -offsets[:, 1]), 2 * np.pi)
            assert np.all(np.diff(clockwise) > 0)


def test_scene_statistics():
    """Sizes, depths, class balance and occlusion over many scenes (no files written)."""
    size = 96
    scale = size / 256
    labels, occluded, total = Counter(), 0, 0
    for index in range(300):
        scene = sample_scene(np.random.default_rng([11, index]), size, size)
        assert 1 <= len(scene.objects) <= 5
        depths = [o.depth for o in scene.objects]
        assert depths == sorted(depths, reverse=True)  # painter's order: far to near
        full, visible = object_masks(scene), render_visible_masks(scene)
        for obj, f, v in zip(scene.objects, full, visible, strict=True):
            labels[obj.label] += 1
            total += 1
            assert 16 * scale <= obj.size <= 128 * scale and 1.0 <= obj.depth <= 8.0
            radius = np.linalg.norm(obj.outline - np.array(obj.center), axis=1)
            assert radius.max() <= obj.size / 2 + 1e-6 and np.ptp(obj.outline, axis=0).max() >= 0.5 * obj.size
            assert v.sum() >= 64 * scale**2
            occluded += v.sum() < 0.95 * f.sum()
    shares = np.array([labels[k] for k in range(len(DEMO_CLASSES))]) / total
    assert np.all(np.abs(shares - 1 / len(DEMO_CLASSES)) < 0.05), shares
    assert 2.0 <= total / 300 <= 4.0  # about three objects per image
    assert occluded / total > 0.05


def test_restoration_pairs(dataset):
    gt = cv2.imread(str(dataset / "restoration/train/gt/00000001.png"))
    lq = cv2.imread(str(dataset / "restoration/train/lq/00000001.png"))
    jpg = cv2.imread(str(dataset / "train/00000001.jpg"))
    assert gt.shape == lq.shape == jpg.shape
    error_lq = np.abs(lq.astype(float) - gt).mean()
    assert error_lq > 2 * np.abs(jpg.astype(float) - gt).mean()  # degraded well beyond the mild sensor noise
    small = cv2.imread(str(dataset / "restoration/train/lq_x2/00000001x2.png"))
    np.testing.assert_array_equal(small, imresize(gt, 0.5))  # MATLAB bicubic, any channel order


def test_regeneration_only_when_meta_changes(tmp_path):
    root = tmp_path / "demo"
    generate_demo_dataset(root, num_train=3, num_val=1, image_size=64, tasks=("instances", "semantic"),
                          progress=False)
    image = root / "train/00000001.jpg"
    stamp = image.stat().st_mtime_ns
    generate_demo_dataset(root, num_train=3, num_val=1, image_size=64, tasks=("semantic", "instances"),
                          progress=False)
    assert image.stat().st_mtime_ns == stamp  # same meta: nothing rewritten

    generate_demo_dataset(root, num_train=2, num_val=1, image_size=64, progress=False)
    assert not (root / "semantic").exists() and not (root / "train/00000003.jpg").exists()
    assert json.loads((root / "meta.json").read_text())["num_train"] == 2

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("user data")
    with pytest.raises(FileExistsError, match=r"no demo meta\.json"):
        generate_demo_dataset(foreign, num_train=1, num_val=0, progress=False)
    with pytest.raises(ValueError, match="unknown demo task"):
        generate_demo_dataset(tmp_path / "bad", tasks=("panoptic",), progress=False)


def test_cli(tmp_path, capsys):
    main([str(tmp_path / "cli"), "--num-train", "2", "--num-val", "1", "--size", "64", "--seed", "5",
          "--tasks", "instances", "depth"])
    assert "demo dataset ready" in capsys.readouterr().out
    meta = json.loads((tmp_path / "cli/meta.json").read_text())
    assert (meta["num_train"], meta["image_size"], meta["seed"], meta["tasks"]) == (2, 64, 5, ["instances", "depth"])


def test_an_empty_split_writes_empty_files_for_every_task(tmp_path):
    """A validation-only (or training-only) copy: the empty split still gets its annotation and split files."""
    root = generate_demo_dataset(tmp_path / "val_only", num_train=0, num_val=1, image_size=64,
                                 tasks=DEMO_TASKS, progress=False)
    assert (root / "depth" / "train.txt").read_text() == ""
    assert len((root / "depth" / "val.txt").read_text().splitlines()) == 1
    assert json.loads((root / "annotations" / "instances_train.json").read_text())["images"] == []
    assert json.loads((root / "annotations" / "person_keypoints_train.json").read_text())["annotations"] == []

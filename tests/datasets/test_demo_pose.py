"""Pose demo: figures posed from the kinematic tree, COCO person keypoints that agree with the rendered pixels."""

from pathlib import Path

import numpy as np
import pytest
from pycocotools.coco import COCO

from densevit.datasets.coco_keypoints import CocoKeypoints
from densevit.datasets.demo import demo_pose_scene, generate_demo_dataset
from densevit.datasets.demo_pose import render_pose_scene, sample_figure
from densevit.datasets.keypoint_info import COCO_KEYPOINTS
from densevit.evaluation.keypoints import CocoKeypointEvaluator

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


@pytest.fixture(scope="module")
def pose_root(tmp_path_factory) -> Path:
    return generate_demo_dataset(tmp_path_factory.mktemp("pose") / "data", num_train=6, num_val=3, image_size=128,
                                 seed=1, tasks=("pose",), progress=False)


def test_layout_and_the_coco_loader(pose_root: Path) -> None:
    assert not (pose_root / "train").exists()  # a pose-only copy renders no shape images
    coco = COCO(str(pose_root / "annotations" / "person_keypoints_train.json"))
    assert coco.loadCats(1)[0]["keypoints"] == list(COCO_KEYPOINTS.names)
    assert len(coco.imgs) == 6 and len(coco.anns) >= 6
    for ann in coco.anns.values():
        kpts = np.array(ann["keypoints"]).reshape(17, 3)
        assert ann["num_keypoints"] == (kpts[:, 2] > 0).sum() >= 6
        x, y, w, h = ann["bbox"]
        seen = kpts[kpts[:, 2] == 2, :2]
        assert ((seen >= [x - 1, y - 1]) & (seen <= [x + w, y + h])).all()  # visible joints lie on the figure
        assert (kpts[kpts[:, 2] == 0, :2] == 0).all()
    ds = CocoKeypoints(pose_root / "annotations" / "person_keypoints_val.json", pose_root / "pose" / "val",
                       input_size=(64, 48), train=True)
    assert ds.keypoint_info == COCO_KEYPOINTS and ds[0]["inputs"].shape == (3, 64, 48)


def test_visibility_agrees_with_the_visible_masks() -> None:
    for index in range(6):
        scene = demo_pose_scene(0, "train", index, 128)
        image, keypoints, masks = render_pose_scene(scene)
        assert image.shape == (128, 128, 3) and len(keypoints) == len(masks) == len(scene.figures) >= 1
        for fig, kpts, mask in zip(scene.figures, keypoints, masks, strict=True):
            padded = np.pad(mask, 1)
            for k, ((x, y, v), (fx, fy)) in enumerate(zip(kpts, fig.joints, strict=True)):
                inside = 0 <= round(fx) < 128 and 0 <= round(fy) < 128
                assert (v > 0) == inside
                np.testing.assert_allclose((x, y), (fx, fy) if inside else (0, 0), atol=1e-4)
                if v == 2:
                    assert padded[round(y):round(y) + 3, round(x):round(x) + 3].any()
                    assert fig.facing_front or k > 2  # the back of the head hides the nose and eyes


def test_front_figures_have_their_left_on_the_image_right() -> None:
    rng = np.random.default_rng(0)
    figures = [sample_figure(rng, 256, 256, 256.0) for _ in range(200)]
    upright = [f for f in figures if abs(np.arctan2(*(f.neck_base - f.joints[11:13].mean(0)))) > 2.8]
    assert len(upright) > 20
    for fig in upright:
        left_of_image_right = fig.joints[5, 0] > fig.joints[6, 0] and fig.joints[11, 0] > fig.joints[12, 0]
        assert left_of_image_right == fig.facing_front
    assert 0.5 < np.mean([f.facing_front for f in figures]) < 0.9


def test_ground_truth_poses_score_100_on_the_demo(pose_root: Path) -> None:
    ann_file = pose_root / "annotations" / "person_keypoints_train.json"
    evaluator = CocoKeypointEvaluator(ann_file, sigmas=COCO_KEYPOINTS.sigmas, print_fn=lambda _: None)
    records = [evaluator.process({"img_id": a["image_id"], "ann_id": a["id"],
                                  "keypoints": np.array(a["keypoints"]).reshape(17, 3)[:, :2],
                                  "keypoint_scores": np.ones(17), "score": 1.0, "scale": np.array(a["bbox"][2:])})
               for a in COCO(str(ann_file)).anns.values()]
    assert evaluator.compute(records)["kpt_AP"] == pytest.approx(100.0)

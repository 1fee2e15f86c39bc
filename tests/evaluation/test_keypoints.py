"""CocoKeypointEvaluator against pycocotools called directly, on real COCO val2017 person keypoints; ground-truth
heatmaps through the dataset, the pose model and the evaluator score AP 100."""

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from paths import COCO_PERSON_MINI, needs_sample
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from densevit.datasets.coco_keypoints import CocoKeypoints
from densevit.datasets.keypoint_info import COCO_KEYPOINTS
from densevit.evaluation.keypoints import KEYPOINT_STAT_NAMES, CocoKeypointEvaluator, oks_nms
from densevit.models.base import Batch
from densevit.models.pose import TopDownPose
from densevit.ops.keypoints import transform_points, udp_heatmaps, udp_warp_matrix

ANN_FILE = COCO_PERSON_MINI / "annotations" / "person_keypoints_mini.json"
SIGMAS = COCO_KEYPOINTS.sigmas

pytestmark = needs_sample(ANN_FILE)


def quiet(_: str) -> None:
    """print_fn that drops the tables."""


def direct_stats(results: list[dict]) -> np.ndarray:
    """COCOeval.stats for keypoints computed with pycocotools directly, the reference."""
    coco_gt = COCO(str(ANN_FILE))
    coco_eval = COCOeval(coco_gt, coco_gt.loadRes(copy.deepcopy(results)), "keypoints")
    coco_eval.evaluate()
    coco_eval.accumulate()
    coco_eval.summarize()
    return coco_eval.stats


def gt_pose_samples(rng: np.random.Generator | None = None, copies: int = 1) -> list[dict]:
    """Ground-truth poses as top-down predictions, one sample per person box (the pose model's output shape).

    With ``rng``: jittered joints, random scores and ``copies`` jittered duplicates per person (as a detector's
    overlapping boxes give), so OKS-NMS has work to do.
    """
    coco = COCO(str(ANN_FILE))
    samples = []
    for ann in coco.anns.values():
        if ann["num_keypoints"] == 0:
            continue
        kpts = np.array(ann["keypoints"], np.float64).reshape(17, 3)
        w, h = ann["bbox"][2:]
        for copy_index in range(copies):
            xy = kpts[:, :2].copy()
            score = 1.0
            if rng is not None:
                xy += rng.normal(0, 4, xy.shape)
                score = float(rng.uniform(0.1, 1.0))
            samples.append({
                "img_id": ann["image_id"], "ann_id": ann["id"] * 10 + copy_index,
                "keypoints": torch.from_numpy(xy).float(), "keypoint_scores": torch.ones(17),
                "score": score, "scale": torch.tensor([max(w, 0.75 * h), max(h, w / 0.75)]) * 1.25,
            })
    return samples


def test_ground_truth_poses_score_100() -> None:
    messages = []
    evaluator = CocoKeypointEvaluator(ANN_FILE, sigmas=SIGMAS, print_fn=messages.append)
    metrics = evaluator.compute([evaluator.process(s) for s in gt_pose_samples()])
    assert set(metrics) == {f"kpt_{n}" for n in KEYPOINT_STAT_NAMES}
    assert all(v == pytest.approx(100.0) for v in metrics.values()), metrics
    assert any("OKS area: the ground-truth annotation's 'area'" in m for m in messages)


@pytest.mark.parametrize("nms_thr", [0.9, None])
def test_equals_pycocotools_called_directly(nms_thr: float | None, tmp_path: Path) -> None:
    outfile = tmp_path / "results.json"
    evaluator = CocoKeypointEvaluator(ANN_FILE, sigmas=SIGMAS, nms_thr=nms_thr, outfile=outfile, print_fn=quiet)
    samples = gt_pose_samples(np.random.default_rng(0), copies=3)
    records = [evaluator.process(s) for s in samples]
    metrics = evaluator.compute(records)
    results = json.loads(outfile.read_text())
    if nms_thr is None:
        assert len(results) == len(samples)
    else:  # every labelled person keeps one pose; most jittered duplicates go
        assert 13 <= len(results) < len(samples) * 2 // 3
    assert results[0]["category_id"] == 1 and len(results[0]["keypoints"]) == 51
    stats = direct_stats(results)
    assert metrics == {f"kpt_{n}": float(s) * 100 for n, s in zip(KEYPOINT_STAT_NAMES, stats, strict=True)}
    assert 10 < metrics["kpt_AP"] < 95
    assert evaluator.evaluate_results(outfile) == metrics


def reference_oks_nms(kpts: np.ndarray, scores: np.ndarray, areas: np.ndarray, thr: float) -> list[int]:
    """OKS-NMS written out joint by joint, pair by pair (mmpose's oks_iou / oks_nms semantics)."""
    variances = (2 * np.asarray(SIGMAS)) ** 2
    order = list(np.argsort(scores, kind="stable")[::-1])
    keep = []
    while order:
        i = order.pop(0)
        keep.append(int(i))
        survivors = []
        for j in order:
            e = [((kpts[j, k, 0] - kpts[i, k, 0]) ** 2 + (kpts[j, k, 1] - kpts[i, k, 1]) ** 2) / variances[k]
                 / ((areas[i] + areas[j]) / 2 + np.spacing(1)) / 2 for k in range(17)]
            if np.mean(np.exp(-np.array(e))) <= thr:
                survivors.append(j)
        order = survivors
    return keep


def test_oks_nms_matches_the_written_out_reference() -> None:
    rng = np.random.default_rng(1)
    base = rng.uniform(0, 200, (4, 17, 2))
    kpts = np.concatenate([base + rng.normal(0, s, base.shape) for s in (0.5, 2, 8)])  # 12 poses, 3 per person
    scores = rng.uniform(size=12)
    areas = rng.uniform(2000, 9000, 12)
    for thr in (0.5, 0.9, 0.99):
        assert oks_nms(kpts, scores, areas, SIGMAS, thr) == reference_oks_nms(kpts, scores, areas, thr)
    assert len(oks_nms(kpts, scores, areas, SIGMAS, 0.5)) < 12
    assert oks_nms(kpts[:0], scores[:0], areas[:0], SIGMAS) == []


def test_no_poses_report_zeros_and_bad_input_names_the_problem(tmp_path: Path) -> None:
    evaluator = CocoKeypointEvaluator(ANN_FILE, sigmas=SIGMAS, print_fn=quiet)
    assert evaluator.compute([]) == {f"kpt_{n}": 0.0 for n in KEYPOINT_STAT_NAMES}
    with pytest.raises(ValueError, match=r"K = 17, found \[16, 2\]"):
        evaluator.process({"img_id": 785, "keypoints": torch.zeros(16, 2), "keypoint_scores": torch.ones(16),
                           "score": 1.0})
    with pytest.raises(KeyError, match="img_id 12 is not an image"):
        evaluator.process({"img_id": 12, "keypoints": torch.zeros(17, 2)})
    with pytest.raises(ValueError, match=r"person_keypoints_mini.json: category 'person' has 17 keypoints, but 3"):
        CocoKeypointEvaluator(ANN_FILE, sigmas=[0.1] * 3)
    dataset = json.loads(ANN_FILE.read_text())
    dataset["annotations"][1]["keypoints"] = dataset["annotations"][1]["keypoints"][:48]
    short = tmp_path / "short.json"
    short.write_text(json.dumps(dataset))
    with pytest.raises(ValueError, match=r"short.json: annotations \[198196\] do not hold 17 keypoints"):
        CocoKeypointEvaluator(short, sigmas=SIGMAS)
    no_anns = tmp_path / "no_anns.json"
    no_anns.write_text(json.dumps({"images": [], "categories": []}))
    with pytest.raises(ValueError, match=r"no_anns.json.*annotations"):
        CocoKeypointEvaluator(no_anns, sigmas=SIGMAS)


class _Fixed(torch.nn.Module):
    """A 'network' that returns the heatmaps it is given: the batch's ground-truth targets."""

    def __init__(self) -> None:
        super().__init__()
        self.heatmaps = torch.zeros(0)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        return self.heatmaps


def test_ground_truth_heatmaps_through_the_whole_pose_path_score_100() -> None:
    """Dataset crop -> UDP targets -> TopDownPose.predict (DARK-UDP, inverse affine) -> evaluator: the conventions of
    the data, the model and the evaluator agree (crop sizes (w, h), pixel centres, flips, areas)."""
    dataset = CocoKeypoints(ANN_FILE, COCO_PERSON_MINI / "images", input_size=(256, 192))
    gt = {a["id"]: np.array(a["keypoints"], np.float64).reshape(17, 3) for a in COCO(str(ANN_FILE)).anns.values()}
    head = _Fixed()
    model = TopDownPose(backbone=torch.nn.Identity(), head=head, num_keypoints=17,
                        flip_pairs=COCO_KEYPOINTS.flip_pairs, flip_test=False).eval()
    evaluator = CocoKeypointEvaluator(ANN_FILE, sigmas=SIGMAS, print_fn=quiet)
    records = []
    for i in range(len(dataset)):
        item = dataset[i]
        sample = item["data_samples"]
        kpts = gt[sample["ann_id"]]
        crop_kpts = transform_points(kpts[:, :2], udp_warp_matrix(sample["center"], sample["scale"], 0.0, (192, 256)))
        target, _ = udp_heatmaps(crop_kpts, kpts[:, 2] > 0, (192, 256), (48, 64))
        head.heatmaps = torch.from_numpy(target)[None]
        pred = model.predict(Batch(inputs=item["inputs"][None].float(), samples=[sample]))[0]
        # DARK's blur sees a truncated Gaussian near the map's border (the reference does too): exact inside it
        on_map = crop_kpts / [191 / 47, 255 / 63]
        inside = (kpts[:, 2] > 0) & (on_map >= 4).all(1) & (on_map <= [43, 59]).all(1)
        np.testing.assert_allclose(pred["keypoints"][inside], kpts[inside, :2], atol=0.05 * sample["scale"][0] / 47)
        records.append(evaluator.process(pred))
    metrics = evaluator.compute(records)
    assert metrics["kpt_AP"] == pytest.approx(100.0) and metrics["kpt_AR"] == pytest.approx(100.0)

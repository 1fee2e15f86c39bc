"""COCO evaluators against pycocotools called directly, on real COCO val2017 person annotations."""

import copy
import json
import math
from pathlib import Path

import numpy as np
import pycocotools.mask as mask_utils
import pytest
import torch
from paths import SHARED_DATA, needs_sample
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from densevit.evaluation.coco import BOX_STAT_NAMES, CocoEvaluator

DATA = SHARED_DATA / "coco_person_mini" / "annotations"
ANN_FILE = DATA / "person_keypoints_mini.json"
DET_FILE = DATA / "person_detections_mini.json"
BACKENDS = ("pycocotools", "faster_coco_eval")

pytestmark = [
    needs_sample(ANN_FILE),
    # pycocotools' mask decoding predates numpy 2's copy keyword; harmless noise.
    pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning"),
]


def quiet(_: str) -> None:
    """print_fn that drops the tables."""


def direct_stats(gt_file: Path, results: list[dict], iou_type: str) -> np.ndarray:
    """COCOeval.stats computed with pycocotools directly, the reference."""
    coco_gt = COCO(str(gt_file))
    coco_eval = COCOeval(coco_gt, coco_gt.loadRes(copy.deepcopy(results)), iou_type)
    coco_eval.evaluate()
    coco_eval.accumulate()
    coco_eval.summarize()
    return coco_eval.stats


def gt_samples(with_masks: bool = True) -> list[dict]:
    """The ground truth of the real sample as perfect predictions (xyxy boxes, decoded polygon masks)."""
    coco = COCO(str(ANN_FILE))
    samples = []
    for img_id, img in coco.imgs.items():
        anns = coco.imgToAnns[img_id]
        x, y, w, h = np.array([a["bbox"] for a in anns], dtype=np.float64).T
        sample = {
            "img_id": img_id,
            "boxes": torch.tensor(np.stack([x, y, x + w, y + h], axis=1), dtype=torch.float32),
            "scores": torch.ones(len(anns)),
            "labels": torch.zeros(len(anns), dtype=torch.long),
        }
        if with_masks:
            sample["masks"] = torch.from_numpy(np.stack([coco.annToMask(a) for a in anns]).astype(bool))
        assert sample["boxes"].shape[0] > 0 and img["height"] > 0
        samples.append(sample)
    return samples


@pytest.mark.parametrize("backend", BACKENDS)
def test_ground_truth_as_predictions_scores_100(backend: str) -> None:
    evaluator = CocoEvaluator(ANN_FILE, backend=backend, print_fn=quiet)
    assert evaluator.backend == backend
    metrics = evaluator.compute([evaluator.process(s) for s in gt_samples()])
    assert set(metrics) == {f"{t}_{n}" for t in ("bbox", "segm") for n in BOX_STAT_NAMES}
    for iou_type in ("bbox", "segm"):
        for name in ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR100", "ARs", "ARm", "ARl"):
            assert metrics[f"{iou_type}_{name}"] == pytest.approx(100.0), (iou_type, name)


def test_process_writes_coco_result_entries() -> None:
    evaluator = CocoEvaluator(ANN_FILE, print_fn=quiet)
    sample = gt_samples()[0]
    entries = evaluator.process(sample)
    assert len(entries) == len(sample["boxes"])
    x1, y1, x2, y2 = sample["boxes"][0].double().tolist()
    assert entries[0]["bbox"] == pytest.approx([x1, y1, x2 - x1, y2 - y1])
    assert entries[0]["category_id"] == 1 and entries[0]["score"] == 1.0
    rle = entries[0]["segmentation"]
    assert isinstance(rle["counts"], str)
    np.testing.assert_array_equal(mask_utils.decode(rle).astype(bool), sample["masks"][0].numpy())
    json.dumps(entries)  # result entries must be JSON-ready


def test_detector_file_matches_pycocotools_and_faster_coco_eval() -> None:
    results = json.loads(DET_FILE.read_text())
    stats = direct_stats(ANN_FILE, results, "bbox")
    assert (stats >= 0).all()  # every area bucket has ground truth here
    expected = {f"bbox_{n}": float(s) * 100 for n, s in zip(BOX_STAT_NAMES, stats, strict=True)}
    lines: list[str] = []
    by_backend = {
        b: CocoEvaluator(ANN_FILE, ("bbox",), backend=b, print_fn=lines.append).evaluate_results(DET_FILE)
        for b in BACKENDS
    }
    assert by_backend["pycocotools"] == expected
    assert by_backend["faster_coco_eval"] == expected
    assert CocoEvaluator(ANN_FILE, ("bbox",), print_fn=quiet).backend == "faster_coco_eval"  # auto
    assert any("person" in line and "AP50" in line for line in lines)  # per-category table
    assert results == json.loads(DET_FILE.read_text())  # the caller's entries are left untouched


def test_backends_agree_on_perturbed_masks() -> None:
    rng = np.random.default_rng(0)
    samples = gt_samples()
    for s in samples:
        n = len(s["boxes"])
        s["scores"] = torch.from_numpy(rng.uniform(0.05, 1.0, n)).float()
        s["boxes"] = s["boxes"] + torch.from_numpy(rng.normal(0, 4, (n, 4))).float()
        s["masks"] = torch.stack(
            [torch.roll(m, tuple(rng.integers(-4, 5, 2)), dims=(0, 1)) for m in s["masks"]]
        )
    metrics = {}
    for backend in BACKENDS:
        evaluator = CocoEvaluator(ANN_FILE, backend=backend, print_fn=quiet)
        records = [evaluator.process(s) for s in samples]
        metrics[backend] = evaluator.compute(records)
    assert metrics["pycocotools"] == metrics["faster_coco_eval"]
    assert 20 < metrics["pycocotools"]["segm_AP"] < 95
    results = [{k: v for k, v in e.items() if k != "bbox"} for r in records for e in r]
    segm = direct_stats(ANN_FILE, results, "segm")
    assert [metrics["pycocotools"][f"segm_{n}"] for n in BOX_STAT_NAMES] == [float(s) * 100 for s in segm]


def ring_mask(size: int, lo: int, hi: int, width: int) -> np.ndarray:
    """A hollow square: small mask area, large box area."""
    mask = np.zeros((size, size), dtype=bool)
    mask[lo:hi, lo:hi] = True
    mask[lo + width : hi - width, lo + width : hi - width] = False
    return mask


@pytest.fixture
def trap_gt(tmp_path: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    """One image with one small object of category 7; categories are non-contiguous (3, 7)."""
    gt_mask = np.zeros((200, 200), dtype=bool)
    gt_mask[10:30, 10:30] = True
    rle = mask_utils.encode(np.asfortranarray(gt_mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    dataset = {
        "images": [{"id": 1, "height": 200, "width": 200, "file_name": "a.jpg"}],
        "categories": [{"id": 3, "name": "cat3"}, {"id": 7, "name": "cat7"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 7, "bbox": [10, 10, 20, 20], "area": 400.0,
             "iscrowd": 0, "segmentation": rle}
        ],
    }  # fmt: skip
    path = tmp_path / "trap.json"
    path.write_text(json.dumps(dataset))
    return path, gt_mask, ring_mask(200, 60, 180, 2)


def test_segm_area_buckets_use_mask_area(trap_gt: tuple[Path, np.ndarray, np.ndarray]) -> None:
    gt_file, gt_mask, ring = trap_gt
    assert ring.sum() < 32**2 < 120 * 120  # small as a mask, large as a box
    lines: list[str] = []
    evaluator = CocoEvaluator(gt_file, backend="pycocotools", print_fn=lines.append)
    assert evaluator.cat_ids == [3, 7]
    sample = {
        "img_id": 1,
        "boxes": torch.tensor([[10.0, 10.0, 30.0, 30.0], [60.0, 60.0, 180.0, 180.0]]),
        "scores": torch.tensor([0.5, 0.9]),  # the false positive ring ranks first
        "labels": torch.tensor([1, 1]),
        "masks": torch.from_numpy(np.stack([gt_mask, ring])),
    }
    entries = evaluator.process(sample)
    assert [e["category_id"] for e in entries] == [7, 7]
    metrics = evaluator.compute([entries])

    # By hand: ranked FP then TP gives precision 1/2 at every recall threshold and IoU threshold -> AP 50.
    # The ring is small as a mask, so it counts against segm_APs; as a box it is large, ignored by bbox_APs.
    assert metrics["segm_AP"] == pytest.approx(50.0) and metrics["segm_APs"] == pytest.approx(50.0)
    assert metrics["bbox_AP"] == pytest.approx(50.0) and metrics["bbox_APs"] == pytest.approx(100.0)
    assert math.isnan(metrics["segm_APl"])  # no large ground truth: pycocotools' -1

    without_bbox = [{k: v for k, v in e.items() if k != "bbox"} for e in entries]
    assert direct_stats(gt_file, without_bbox, "segm")[3] * 100 == metrics["segm_APs"]
    assert direct_stats(gt_file, entries, "segm")[3] * 100 == pytest.approx(100.0)  # the trap is real
    assert any("cat3" in line and "nan" in line for line in lines)  # category without GT in the table


def test_mask_inputs_are_checked(trap_gt: tuple[Path, np.ndarray, np.ndarray]) -> None:
    evaluator = CocoEvaluator(trap_gt[0], print_fn=quiet)
    sample = {
        "img_id": 1,
        "boxes": torch.zeros(1, 4),
        "scores": torch.ones(1),
        "labels": torch.ones(1, dtype=int),
    }
    with pytest.raises(KeyError, match="masks"):
        evaluator.process(sample)
    with pytest.raises(ValueError, match="original image"):
        evaluator.process({**sample, "masks": torch.zeros(1, 100, 100, dtype=torch.bool)})
    with pytest.raises(ValueError, match="labels"):
        evaluator.process({**sample, "labels": torch.tensor([2]), "masks": torch.zeros(1, 200, 200)})
    with pytest.raises(KeyError, match="img_id 5"):
        evaluator.process({**sample, "img_id": 5})
    with pytest.raises(ValueError, match=r"category ids \[1\]"):
        evaluator.evaluate_results([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 1.0,
                                     "segmentation": {}}])  # fmt: skip


def test_no_detections_reports_zeros() -> None:
    coco = COCO(str(ANN_FILE))
    evaluator = CocoEvaluator(ANN_FILE, backend="pycocotools", print_fn=quiet)
    records = [
        evaluator.process(
            {"img_id": i, "boxes": torch.zeros(0, 4), "scores": torch.zeros(0), "labels": torch.zeros(0),
             "masks": torch.zeros(0, img["height"], img["width"], dtype=torch.bool)}
        )
        for i, img in coco.imgs.items()
    ]  # fmt: skip
    metrics = evaluator.compute(records)
    assert len(metrics) == 24 and all(v == 0.0 for v in metrics.values())


def test_bad_annotation_files_name_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"images": [')
    with pytest.raises(ValueError, match=r"broken\.json"):
        CocoEvaluator(broken)
    with pytest.raises(FileNotFoundError, match=r"absent\.json"):
        CocoEvaluator(tmp_path / "absent.json")
    no_area = tmp_path / "no_area.json"
    dataset = json.loads(ANN_FILE.read_text())
    del dataset["annotations"][2]["area"]
    no_area.write_text(json.dumps(dataset))
    with pytest.raises(ValueError, match=r"no_area.json: annotations\[2\] lacks keys \['area'\]"):
        CocoEvaluator(no_area)

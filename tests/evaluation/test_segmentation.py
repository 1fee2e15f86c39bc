"""mIoU evaluator: equal to a straightforward confusion-matrix computation, mmsegmentation's conventions."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from densevit.evaluation.segmentation import SegmentationEvaluator, confusion_matrix, intersect_and_union

IGNORE = 255


def reference_metrics(preds: list[np.ndarray], gts: list[np.ndarray], num_classes: int) -> dict[str, float]:
    """Independent computation: one confusion matrix over the whole set, metrics from its rows and columns."""
    conf = np.zeros((num_classes, num_classes), np.int64)  # [gt, pred]
    for pred, gt in zip(preds, gts, strict=True):
        valid = gt != IGNORE
        np.add.at(conf, (gt[valid], pred[valid]), 1)
    inter = np.diag(conf).astype(float)
    label = conf.sum(1).astype(float)
    union = label + conf.sum(0) - inter
    ious = [inter[c] / union[c] for c in range(num_classes) if union[c] > 0]
    accs = [inter[c] / label[c] for c in range(num_classes) if label[c] > 0]
    return {"aAcc": 100 * inter.sum() / label.sum(), "mIoU": 100 * np.mean(ious), "mAcc": 100 * np.mean(accs)}


def random_set(rng: np.random.Generator, num_images: int, num_classes: int) -> tuple[list, list]:
    """Label maps of different sizes with ignored pixels; class K-1 never in the GT, class K-2 nowhere."""
    preds, gts = [], []
    for _ in range(num_images):
        h, w = rng.integers(5, 40, size=2)
        gt = rng.integers(0, num_classes - 2, size=(h, w))
        gt[rng.random((h, w)) < 0.2] = IGNORE
        # mostly right, sometimes any class but K-2 (so K-1 is predicted without being in the GT)
        noise = rng.integers(0, num_classes - 1, size=(h, w))
        noise[noise == num_classes - 2] = num_classes - 1
        pred = np.where(rng.random((h, w)) < 0.6, np.where(gt == IGNORE, 0, gt), noise)
        preds.append(pred)
        gts.append(gt)
    return preds, gts


def evaluate(evaluator: SegmentationEvaluator, preds: list, gts: list) -> dict[str, float]:
    records = [evaluator.process({"sem_seg": torch.from_numpy(p), "gt_sem_seg": torch.from_numpy(g)})
               for p, g in zip(preds, gts, strict=True)]
    return evaluator.compute(records)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_equals_confusion_matrix_computation(seed):
    rng = np.random.default_rng(seed)
    num_classes = 7
    preds, gts = random_set(rng, 12, num_classes)
    metrics = evaluate(SegmentationEvaluator(num_classes, print_fn=None), preds, gts)
    expected = reference_metrics(preds, gts, num_classes)
    assert set(metrics) == {"aAcc", "mIoU", "mAcc"}
    for key, value in expected.items():
        assert metrics[key] == pytest.approx(value, rel=1e-12), key


def test_confusion_matrix_rows_are_ground_truth_and_ignored_pixels_drop():
    gt = torch.tensor([[0, 0, 1], [2, 255, 1]])
    pred = torch.tensor([[0, 1, 1], [0, 2, 2]])
    expected = np.array([[1, 1, 0],  # ground truth 0: once right, once taken for 1
                         [0, 1, 1],
                         [1, 0, 0]])
    np.testing.assert_array_equal(confusion_matrix(pred, gt, 3), expected)


def test_absent_classes_follow_mmseg():
    # class 0: right on 2 of 3 pixels; class 1 predicted once but never in the GT (IoU 0, counted);
    # class 2 nowhere (NaN, skipped); the ignored pixel's prediction (class 2) does not count
    gt = torch.tensor([[0, 0, 0, IGNORE]])
    pred = torch.tensor([[0, 0, 1, 2]])
    lines: list[str] = []
    evaluator = SegmentationEvaluator(class_names=("a", "b", "c"), print_fn=lines.append)
    record = evaluator.process({"sem_seg": pred, "gt_sem_seg": gt})
    np.testing.assert_array_equal(record, [[2, 0, 0], [3, 1, 0], [2, 1, 0], [3, 0, 0]])
    metrics = evaluator.compute([record])
    assert metrics["mIoU"] == pytest.approx(100 * (2 / 3 + 0) / 2)
    assert metrics["mAcc"] == pytest.approx(100 * 2 / 3)
    assert metrics["aAcc"] == pytest.approx(100 * 2 / 3)
    table = lines[0]
    assert "a" in table and "nan" in table and "mIoU 33.33" in table


def test_histograms_are_summed_over_the_set_not_averaged_per_image():
    evaluator = SegmentationEvaluator(2, print_fn=None)
    # image 1: class 0 perfect on 1 pixel; image 2: class 0 on 3 pixels, predicted as 1 on all of them
    records = [evaluator.process({"sem_seg": torch.tensor([[0]]), "gt_sem_seg": torch.tensor([[0]])}),
               evaluator.process({"sem_seg": torch.tensor([[1, 1, 1]]), "gt_sem_seg": torch.tensor([[0, 0, 0]])})]
    metrics = evaluator.compute(records)
    # summed: class 0 I=1, U=4 -> 0.25; class 1 I=0, U=3 -> 0  (per-image averaging would give other numbers)
    assert metrics["mIoU"] == pytest.approx(100 * (0.25 + 0.0) / 2)
    assert metrics["aAcc"] == pytest.approx(25.0)


def test_records_are_small_histograms():
    evaluator = SegmentationEvaluator(150, print_fn=None)
    pred = torch.randint(0, 150, (512, 683))
    record = evaluator.process({"sem_seg": pred, "gt_sem_seg": pred.clone()})
    assert record.shape == (4, 150) and record.dtype == np.int64
    assert len(pickle.dumps(record)) < 6000  # independent of the image size
    assert evaluator.compute([record])["mIoU"] == pytest.approx(100.0)


def test_bad_inputs_name_the_image():
    evaluator = SegmentationEvaluator(3, print_fn=None)
    with pytest.raises(ValueError, match=r"img\.png.*ground truth holds values \[7\]"):
        evaluator.process({"sem_seg": torch.zeros(2, 2, dtype=torch.long),
                           "gt_sem_seg": torch.tensor([[0, 7], [1, IGNORE]]), "img_path": "img.png"})
    with pytest.raises(ValueError, match="original resolution"):
        evaluator.process({"sem_seg": torch.zeros(2, 3, dtype=torch.long), "gt_sem_seg": torch.zeros(2, 2)})
    with pytest.raises(KeyError, match="gt_sem_seg"):
        evaluator.process({"sem_seg": torch.zeros(2, 2, dtype=torch.long)})
    with pytest.raises(ValueError, match="no records"):
        evaluator.compute([])


def test_intersect_and_union_matches_direct_counts():
    rng = np.random.default_rng(5)
    gt = rng.integers(0, 4, size=(30, 20))
    pred = rng.integers(0, 4, size=(30, 20))
    inter, union, area_pred, area_label = intersect_and_union(torch.from_numpy(pred), torch.from_numpy(gt), 4)
    for c in range(4):
        assert inter[c] == np.sum((pred == c) & (gt == c))
        assert union[c] == np.sum((pred == c) | (gt == c))
        assert area_pred[c] == np.sum(pred == c) and area_label[c] == np.sum(gt == c)

"""Depth evaluator: the nine metrics against an independent computation, valid range, crops and clamping."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
import torch

from densevit.evaluation.depth import DEPTH_METRIC_NAMES, DepthEvaluator, clamp_prediction, eval_mask


def reference_metrics(pred: np.ndarray, gt: np.ndarray, keep: np.ndarray) -> dict[str, float]:
    """Metrics of one image written pixel by pixel from the metric definitions (Eigen et al. 2014) (pure Python
    floats, no vector maths)."""
    pairs = [(float(p), float(g)) for p, g, k in zip(pred.ravel(), gt.ravel(), keep.ravel(), strict=True) if k]
    n = len(pairs)
    ratios = [max(g / p, p / g) for p, g in pairs]
    d = [math.log(p) - math.log(g) for p, g in pairs]
    return {
        "d1": sum(t < 1.25 for t in ratios) / n,
        "d2": sum(t < 1.25**2 for t in ratios) / n,
        "d3": sum(t < 1.25**3 for t in ratios) / n,
        "abs_rel": sum(abs(g - p) / g for p, g in pairs) / n,
        "sq_rel": sum((g - p) ** 2 / g for p, g in pairs) / n,
        "rmse": math.sqrt(sum((g - p) ** 2 for p, g in pairs) / n),
        "rmse_log": math.sqrt(sum((math.log(g) - math.log(p)) ** 2 for p, g in pairs) / n),
        "log10": sum(abs(math.log10(g) - math.log10(p)) for p, g in pairs) / n,
        "silog": 100 * math.sqrt(sum(v * v for v in d) / n - (sum(d) / n) ** 2),
    }


def corrupt(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """A ground truth with holes and out-of-range values, and a noisy prediction with nan/inf/out-of-range."""
    gt = rng.uniform(0.5, 9.5, size=(h, w))
    gt[rng.random((h, w)) < 0.2] = 0.0  # no measurement
    gt[rng.random((h, w)) < 0.05] = 12.0  # beyond max_depth
    pred = gt * rng.lognormal(0.0, 0.2, size=(h, w)) + rng.uniform(0.1, 1.0, size=(h, w))
    pred[rng.random((h, w)) < 0.02] = np.inf
    pred[rng.random((h, w)) < 0.02] = np.nan
    pred[rng.random((h, w)) < 0.02] = -1.0
    pred[rng.random((h, w)) < 0.02] = 25.0
    return pred, gt


def test_matches_independent_computation_on_nyu_frames_with_invalid_pixels():
    rng = np.random.default_rng(0)
    evaluator = DepthEvaluator(min_depth=1e-3, max_depth=10.0, crop="eigen", print_fn=lambda s: None)
    records, expected = [], []
    for i in range(3):
        pred, gt = corrupt(rng, 480, 640)
        records.append(evaluator.process({"img_id": i, "depth": torch.from_numpy(pred).float(),
                                          "gt_depth": torch.from_numpy(gt).float()}))
        # reference: clamp as BTS does, valid range, Eigen crop rows 45..470 / cols 41..600
        p = pred.astype(np.float32).astype(np.float64)  # what the evaluator receives
        p = np.where(np.isnan(p), 1e-3, np.where(np.isinf(p), 10.0, np.clip(p, 1e-3, 10.0)))
        g = gt.astype(np.float32).astype(np.float64)
        keep = np.zeros_like(g, dtype=bool)
        keep[45:471, 41:601] = True
        keep &= (g > 1e-3) & (g < 10.0)
        expected.append(reference_metrics(p, g, keep))
    metrics = evaluator.compute(records)
    assert list(metrics) == list(DEPTH_METRIC_NAMES)
    for name in DEPTH_METRIC_NAMES:
        assert metrics[name] == pytest.approx(np.mean([e[name] for e in expected]), rel=1e-9, abs=1e-12), name
    # per image, then averaged: differs from pooling all pixels once images differ in valid counts
    assert 0.0 < metrics["d1"] < 1.0 and metrics["abs_rel"] > 0.0


def test_records_are_small_picklable_metric_vectors():
    pred, gt = corrupt(np.random.default_rng(1), 480, 640)
    record = DepthEvaluator(print_fn=lambda s: None).process({"depth": pred, "gt_depth": gt})
    assert isinstance(record, tuple) and len(record) == 9 and all(isinstance(v, float) for v in record)
    assert len(pickle.dumps(record)) < 400


def test_perfect_prediction_and_constant_scale_error():
    gt = np.random.default_rng(2).uniform(1.0, 6.0, size=(32, 40))
    evaluator = DepthEvaluator(crop=None, print_fn=lambda s: None)
    perfect = evaluator.compute([evaluator.process({"depth": gt, "gt_depth": gt})])
    assert perfect["d1"] == 1.0 and perfect["abs_rel"] == 0.0 and perfect["rmse"] == 0.0
    assert perfect["silog"] == pytest.approx(0.0, abs=1e-5)
    scaled = evaluator.compute([evaluator.process({"depth": 1.5 * gt, "gt_depth": gt})])  # ratio 1.5 everywhere
    assert (scaled["d1"], scaled["d2"], scaled["d3"]) == (0.0, 1.0, 1.0)
    assert scaled["abs_rel"] == pytest.approx(0.5)
    assert scaled["rmse_log"] == pytest.approx(math.log(1.5))
    assert scaled["log10"] == pytest.approx(math.log10(1.5))
    assert scaled["silog"] == pytest.approx(0.0, abs=1e-5)  # a pure scale error is invisible to SILog


def test_clamping_rules():
    pred = np.array([[np.nan, np.inf, -np.inf, -3.0, 0.0, 5.0, 50.0]])
    np.testing.assert_array_equal(clamp_prediction(pred, 1e-3, 10.0), [[1e-3, 10.0, 10.0, 1e-3, 1e-3, 5.0, 10.0]])


def test_crops():
    gt = np.full((480, 640), 5.0)
    eigen = eval_mask(gt, 1e-3, 10.0, "eigen")
    assert eigen.sum() == 426 * 560 and eigen[45, 41] and eigen[470, 600] and not eigen[44, 41] and not eigen[45, 601]
    kitti = np.full((375, 1242), 5.0)
    garg = eval_mask(kitti, 1e-3, 80.0, "garg")
    rows, cols = np.nonzero(garg)
    assert (rows.min(), rows.max() + 1) == (int(0.40810811 * 375), int(0.99189189 * 375))
    assert (cols.min(), cols.max() + 1) == (int(0.03594771 * 1242), int(0.96405229 * 1242))
    assert eval_mask(gt, 1e-3, 10.0, None).all()
    with pytest.raises(ValueError, match="480x640"):
        eval_mask(np.ones((256, 256)), 1e-3, 10.0, "eigen")
    with pytest.raises(ValueError, match="crop"):
        DepthEvaluator(crop="centre")


def test_valid_range_is_open_on_both_ends():
    gt = np.array([[0.0, 1e-3, 2.0, 10.0, 11.0]])
    np.testing.assert_array_equal(eval_mask(gt, 1e-3, 10.0, None), [[False, False, True, False, False]])


def test_images_without_valid_pixels_are_skipped_and_an_empty_set_fails():
    evaluator = DepthEvaluator(crop=None, print_fn=lambda s: None)
    empty = evaluator.process({"depth": np.ones((4, 4)), "gt_depth": np.zeros((4, 4))})
    assert empty is None
    good = evaluator.process({"depth": np.full((4, 4), 2.0), "gt_depth": np.full((4, 4), 2.5)})
    metrics = evaluator.compute([empty, good])
    assert metrics["abs_rel"] == pytest.approx(0.2)
    with pytest.raises(ValueError, match="none of the 1 images"):
        evaluator.compute([empty])


def test_shape_mismatch_and_missing_keys_raise():
    evaluator = DepthEvaluator(crop=None, print_fn=lambda s: None)
    with pytest.raises(ValueError, match="same"):
        evaluator.process({"img_path": "a.jpg", "depth": np.ones((4, 4)), "gt_depth": np.ones((4, 5))})
    with pytest.raises(KeyError, match="gt_depth"):
        evaluator.process({"depth": np.ones((4, 4))})


def test_compute_prints_a_table():
    lines = []
    evaluator = DepthEvaluator(crop=None, print_fn=lines.append)
    evaluator.compute([evaluator.process({"depth": np.full((4, 4), 2.0), "gt_depth": np.full((4, 4), 2.5)})])
    assert "abs_rel" in lines[0] and "0.2000" in lines[0]

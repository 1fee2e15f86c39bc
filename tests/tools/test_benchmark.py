"""tools/benchmark.py counts a detector's whole inference path: the RPN head on every pyramid level, the box head on
every post-NMS proposal (each cascade stage), the mask head on the detections; checked against a hand count."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest
import torch

from densevit.adapters.simple_pyramid import SimpleFeaturePyramid
from densevit.backbones.vit import ViT
from densevit.benchmarking import count_flops, count_flops_by_module
from densevit.heads.rcnn import box_head, box_predictor, mask_head, mask_predictor, rpn_head
from densevit.models.mask_rcnn import MaskRCNN
from densevit.tools.benchmark import detect_every_box, record_rois, synthetic_batch

TOOLS = Path(__file__).resolve().parents[2] / "tools"
QUICKSTART = TOOLS.parent / "configs" / "quickstart" / "mask_rcnn_vit_tiny_demo.py"

pytestmark = pytest.mark.usefixtures("one_thread")

WIDTH, CLASSES, PROPOSALS, DETECTIONS, BATCH, SIZE = 32, 3, 50, 10, 2, 128


def conv(c_in: int, c_out: int, kernel: int, pixels: int) -> int:
    """A convolution's FLOPs by hand: a multiply-add (2 FLOPs) per input channel, kernel tap and output pixel."""
    return 2 * c_in * kernel * kernel * c_out * pixels


def tiny_detector(cascade: bool) -> MaskRCNN:
    """A ViT + simple pyramid Mask R-CNN with small heads: 50 proposals and 10 detections an image."""
    return MaskRCNN(
        backbone=SimpleFeaturePyramid(ViT(img_size=64, embed_dim=64, depth=2, num_heads=2), WIDTH, top_block=True),
        num_classes=CLASSES,
        rpn_post_nms_top_n_test=PROPOSALS,
        detections_per_img=DETECTIONS,
        cascade=cascade,
        rpn_head_module=rpn_head(WIDTH, 3, num_convs=1),
        box_head_module=box_head(WIDTH, conv_dim=16, num_convs=1, fc_dim=64),
        box_predictor_module=box_predictor(64, CLASSES, class_agnostic=cascade),
        mask_head_module=mask_head(WIDTH, conv_dim=16, num_convs=2),
        mask_predictor_module=mask_predictor(16, 16, CLASSES),
    ).eval()


def heads_by_hand(cascade: bool) -> tuple[int, int]:
    """(RPN head, RoI heads) FLOPs of ``tiny_detector`` on a batch of two 128x128 images."""
    anchors = 3
    positions = BATCH * sum((SIZE // stride) ** 2 for stride in (4, 8, 16, 32, 64))
    rpn = conv(WIDTH, WIDTH, 3, positions) + conv(WIDTH, anchors + 4 * anchors, 1, positions)
    box_deltas = 4 if cascade else 4 * (CLASSES + 1)
    box = conv(WIDTH, 16, 3, 7 * 7) + 2 * 16 * 49 * 64 + 2 * 64 * (CLASSES + 1 + box_deltas)  # conv, fc, predictor
    mask = (conv(WIDTH, 16, 3, 14 * 14) + conv(16, 16, 3, 14 * 14)  # the head's two convs
            + conv(16, 16, 2, 14 * 14) + conv(16, CLASSES + 1, 1, 28 * 28))  # 2x deconvolution, logits
    stages = 3 if cascade else 1
    return rpn, BATCH * (stages * PROPOSALS * box + DETECTIONS * mask)


@pytest.mark.parametrize("cascade", [False, True], ids=["mask_rcnn", "cascade"])
def test_detector_flops_are_backbone_plus_every_head(cascade):
    torch.manual_seed(0)
    model = tiny_detector(cascade)
    assert detect_every_box(model)
    rois = record_rois(model)
    batch = synthetic_batch(model, BATCH, (SIZE, SIZE), torch.device("cpu"))
    with torch.inference_mode():
        counted = count_flops_by_module(partial(model.predict, batch), model)
        features = count_flops(model.extract_features, batch.inputs)  # backbone (and neck) alone

    rpn, roi_heads = heads_by_hand(cascade)
    box_heads = [f"roi_heads.stages.{k}.box_head" for k in range(3)] if cascade else ["roi_heads.box_head"]
    assert rois == {**{name: [BATCH * PROPOSALS] for name in box_heads}, "roi_heads.mask_head": [BATCH * DETECTIONS]}
    assert (counted.flops["rpn"], counted.flops["roi_heads"]) == (rpn, roi_heads)
    assert counted.total == features + rpn + roi_heads


def test_benchmark_prints_every_part_and_what_it_did_not_count(tool, capsys):
    tool("benchmark.py", QUICKSTART, "--shape", 64, 64, "--repeats", 1, "--warmup", 0)
    out = capsys.readouterr().out
    assert "MaskRCNN.predict, detection score threshold 0" in out
    parts = {line.split()[0] for line in out.splitlines() if line.startswith("  ")}
    assert {"backbone", "rpn", "roi_heads", "roi_heads.box_head", "roi_heads.mask_head"} <= parts, out
    assert "RoIs:         roi_heads.mask_head: 100 (batch of 1)" in out  # detections_per_img
    assert "a multiply-add counts 2 FLOPs" in out and "not counted:" in out and "NMS" in out


def test_benchmark_times_a_training_step(tool, capsys):
    tool("benchmark.py", TOOLS.parent / "configs" / "quickstart" / "dpt_vit_tiny_demo.py", "--shape", 64, 64,
         "--batch", 2, "--train", "--repeats", 1, "--warmup", 0)
    out = capsys.readouterr().out
    assert "DepthEstimator.loss + backward + optimiser step" in out and "latency:" in out

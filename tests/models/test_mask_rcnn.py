"""Mask R-CNN over every backbone/adapter that can feed it: losses and gradients, predictions in original pixels;
Cascade Mask R-CNN (``cascade=True``): per-stage losses, how each stage feeds the next, scores, learning."""

from __future__ import annotations

import math

import pytest
import torch
from tiny_pyramids import tiny_pyramids
from torchvision.models.detection.roi_heads import fastrcnn_loss
from torchvision.models.detection.rpn import AnchorGenerator, RegionProposalNetwork
from torchvision.ops import MultiScaleRoIAlign, roi_align

from densevit.engine.data import DataPreprocessor
from densevit.engine.model import RunnerModel
from densevit.heads.mask import mask_loss, mask_targets, paste_masks
from densevit.heads.rcnn import box_head, box_predictor, mask_head, mask_predictor, rpn_head
from densevit.heads.roi_heads import _ScaleGradient, fast_rcnn_loss, refine_proposals
from densevit.heads.rpn import RPN
from densevit.models.mask_rcnn import CASCADE_REG_WEIGHTS, MaskRCNN
from densevit.ops.roi_align import PyramidRoIAlign

pytestmark = pytest.mark.usefixtures("one_thread")

NUM_CLASSES = 3
WIDTH = 32


PYRAMIDS = tiny_pyramids(WIDTH)


def tiny_mask_rcnn(name: str, cascade: bool = False, **kwargs) -> RunnerModel:
    torch.manual_seed(0)
    return RunnerModel(MaskRCNN(
        backbone=PYRAMIDS[name](),
        num_classes=NUM_CLASSES,
        anchor_sizes=(8, 16, 32, 64, 128),
        box_batch_size_per_image=32,
        rpn_post_nms_top_n_train=100,
        rpn_post_nms_top_n_test=50,
        # ViTDet's heads with one conv each
        rpn_head_module=rpn_head(WIDTH, num_convs=1),
        box_head_module=box_head(WIDTH, conv_dim=WIDTH, num_convs=1, fc_dim=64),
        box_predictor_module=box_predictor(64, NUM_CLASSES, class_agnostic=cascade),
        mask_head_module=mask_head(WIDTH, conv_dim=WIDTH, num_convs=1),
        mask_predictor_module=mask_predictor(WIDTH, WIDTH, NUM_CLASSES),
        cascade=cascade,
        **kwargs,
    ), DataPreprocessor())


def _image_with_squares(h: int, w: int, boxes: list[tuple[int, int, int, int]], labels: list[int]) -> dict:
    """A dark image with bright filled rectangles, and their boxes, labels and masks (a dataset item)."""
    image = torch.full((3, h, w), 30, dtype=torch.uint8)
    masks = torch.zeros(len(boxes), h, w, dtype=torch.uint8)
    for i, (x0, y0, x1, y1) in enumerate(boxes):
        image[:, y0:y1, x0:x1] = 200 + 20 * i
        masks[i, y0:y1, x0:x1] = 1
    sample = {"img_shape": (h, w), "ori_shape": (h, w), "scale_factor": (1.0, 1.0),
              "boxes": torch.tensor(boxes, dtype=torch.float32), "labels": torch.tensor(labels), "masks": masks}
    return {"inputs": image, "data_samples": sample}


def _train_batch(model: RunnerModel) -> dict:
    """Two images, one and two squares, padded to one 96x96 batch."""
    items = [_image_with_squares(64, 64, [(8, 10, 40, 44)], [0]),
             _image_with_squares(80, 96, [(4, 4, 30, 26), (50, 30, 90, 76)], [2, 1])]
    return model.data_preprocessor({"inputs": [it["inputs"] for it in items],
                                    "data_samples": [it["data_samples"] for it in items]}, True)


SINGLE_STAGE_LOSSES = {"loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg", "loss_mask"}
CASCADE_LOSSES = {"loss_objectness", "loss_rpn_box_reg", "loss_mask",
                  *(f"loss_{n}_stage{k}" for n in ("classifier", "box_reg") for k in range(3))}


@pytest.mark.parametrize("name", sorted(PYRAMIDS))
def test_losses_reach_every_parameter(name):
    model = tiny_mask_rcnn(name).train()
    batch = _train_batch(model)
    assert batch["inputs"].shape == (2, 3, 96, 96)
    losses = model(**batch, mode="loss")
    assert set(losses) == SINGLE_STAGE_LOSSES
    assert all(math.isfinite(v.item()) for v in losses.values()), losses
    sum(losses.values()).backward()
    no_grad = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert no_grad == []
    backbone_grads = [p.grad.abs().sum().item() for p in model.model.backbone.parameters() if p.requires_grad]
    assert all(math.isfinite(g) for g in backbone_grads) and sum(backbone_grads) > 0


@pytest.mark.parametrize("name", sorted(PYRAMIDS))
def test_predictions_are_in_original_image_coordinates(name):
    """The same 48x64 input (padded to 64x64) as two samples: one shown at its own size, one whose original image
    was 96x256 (scale factors 1/4 across, 1/2 down); the second's boxes are the first's stretched alike."""
    model = tiny_mask_rcnn(name, box_score_thresh=0.0).eval()  # an untrained model: keep every detection
    image = _image_with_squares(48, 64, [(8, 6, 30, 40)], [0])["inputs"]
    same = {"img_shape": (48, 64), "ori_shape": (48, 64), "scale_factor": (1.0, 1.0)}
    resized = {"img_shape": (48, 64), "ori_shape": (96, 256), "scale_factor": (0.25, 0.5)}
    batch = model.data_preprocessor({"inputs": [image, image], "data_samples": [same, resized]}, False)
    assert batch["inputs"].shape == (2, 3, 64, 64)
    with torch.no_grad():
        first, second = model(**batch, mode="predict")
    num = len(first["boxes"])
    assert num > 0 and len(second["boxes"]) == num
    assert first["masks"].shape == (num, 48, 64) and second["masks"].shape == (num, 96, 256)
    assert first["masks"].dtype == torch.bool
    torch.testing.assert_close(second["boxes"], first["boxes"] * torch.tensor([4.0, 2.0, 4.0, 2.0]))
    torch.testing.assert_close(second["scores"], first["scores"])
    assert (first["boxes"][:, 2] <= 64).all() and (first["boxes"][:, 3] <= 48).all()  # not the padded 64x64
    assert ((second["labels"] >= 0) & (second["labels"] < NUM_CLASSES)).all()
    assert second["ori_shape"] == (96, 256)  # the sample's own keys are kept


# --- Cascade Mask R-CNN ------------------------------------------------------------------------------------------

CASCADE_PYRAMID = "vit+simple_pyramid"  # for the checks of the RoI heads alone


@pytest.mark.parametrize("name", sorted(PYRAMIDS))
def test_cascade_losses_per_stage_reach_every_parameter(name):
    model = tiny_mask_rcnn(name, cascade=True).train()
    stages = model.model.roi_heads.stages
    assert len(stages) == 3
    assert [s.proposal_matcher.high_threshold for s in stages] == [0.5, 0.6, 0.7]
    assert [s.box_coder.weights for s in stages] == list(CASCADE_REG_WEIGHTS)
    assert all(s.box_predictor.bbox_pred.out_features == 4 for s in stages)  # class-agnostic
    assert len({id(s.box_head) for s in stages}) == 3  # each stage its own head
    losses = model(**_train_batch(model), mode="loss")
    assert set(losses) == CASCADE_LOSSES
    assert all(math.isfinite(v.item()) for v in losses.values()), losses
    assert all(losses[f"loss_box_reg_stage{k}"] > 0 for k in range(3))  # every stage has positives
    sum(losses.values()).backward()
    no_grad = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert no_grad == []
    for k, stage in enumerate(stages):
        grads = [p.grad.abs().sum().item() for p in (*stage.box_head.parameters(), *stage.box_predictor.parameters())]
        assert all(math.isfinite(g) for g in grads) and min(grads) > 0, f"stage {k}"


def test_gradient_scale_is_identity_forward_and_scales_backward():
    x = torch.randn(5, 3, requires_grad=True)
    y = _ScaleGradient.apply(x, 1 / 3)
    torch.testing.assert_close(y, x)
    (2 * y).sum().backward()
    torch.testing.assert_close(x.grad, torch.full_like(x, 2 / 3))


def test_refine_proposals_by_hand():
    """Deltas (1, -2, 5 ln 2, 0) at weights (10, 10, 5, 5) on the box (10, 10, 30, 50) (centre (20, 30), 20 x 40):
    centre x + 0.1 * 20, centre y - 0.2 * 40, width x 2 -> (2, 2, 42, 42), clipped to a 40-high image."""
    from torchvision.models.detection._utils import BoxCoder

    coder = BoxCoder(CASCADE_REG_WEIGHTS[0])
    deltas = torch.tensor([[1.0, -2.0, 5 * math.log(2.0), 0.0], [0.0, 0.0, 0.0, 0.0], [0.0, 0.0, -20.0, 0.0]],
                          requires_grad=True)
    proposals = [torch.tensor([[10.0, 10.0, 30.0, 50.0], [0.0, 0.0, 8.0, 8.0]]), torch.tensor([[4.0, 4.0, 12.0, 6.0]])]
    first, second = refine_proposals(deltas, proposals, coder, [(40, 64), (32, 32)])
    torch.testing.assert_close(first, torch.tensor([[2.0, 2.0, 42.0, 40.0], [0.0, 0.0, 8.0, 8.0]]))
    # width x e^-4: (8 - 0.147) wide, centred at 8
    w = 8 * math.exp(-4.0)
    torch.testing.assert_close(second, torch.tensor([[8 - w / 2, 4.0, 8 + w / 2, 6.0]]))
    assert not first.requires_grad
    # a box that clipping empties is dropped only when asked (training)
    outside = [torch.tensor([[70.0, 0.0, 90.0, 10.0]])]
    zero = torch.zeros(1, 4)
    assert refine_proposals(zero, outside, coder, [(40, 64)])[0].shape == (1, 4)
    assert refine_proposals(zero, outside, coder, [(40, 64)], drop_empty=True)[0].shape == (0, 4)


def _decode_by_hand(deltas: torch.Tensor, boxes: torch.Tensor, weights, height: int, width: int) -> torch.Tensor:
    """R-CNN box decoding written out: centre shift by delta/weight x size, size x exp(delta/weight), clip."""
    wx, wy, ww, wh = weights
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    cx = boxes[:, 0] + w / 2 + deltas[:, 0] / wx * w
    cy = boxes[:, 1] + h / 2 + deltas[:, 1] / wy * h
    w, h = w * torch.exp(deltas[:, 2] / ww), h * torch.exp(deltas[:, 3] / wh)
    x0, x1 = (cx - w / 2).clamp(0, width), (cx + w / 2).clamp(0, width)
    y0, y1 = (cy - h / 2).clamp(0, height), (cy + h / 2).clamp(0, height)
    return torch.stack([x0, y0, x1, y1], dim=1)


def _record_stages(model: MaskRCNN) -> list[dict]:
    """Hooks that record each stage's input boxes, class logits and box deltas."""
    seen: list[dict] = [{} for _ in model.model.roi_heads.stages]
    for k, stage in enumerate(model.model.roi_heads.stages):
        stage.box_roi_pool.register_forward_pre_hook(
            lambda m, args, k=k: seen[k].update(proposals=list(args[1])))
        stage.box_predictor.register_forward_hook(
            lambda m, args, out, k=k: seen[k].update(logits=out[0].detach(), deltas=out[1].detach()))
    return seen


def test_cascade_training_stages_take_the_previous_stage_boxes():
    """In training, stage k + 1's boxes are stage k's sampled proposals decoded by hand (no ground truth added)."""
    model = tiny_mask_rcnn(CASCADE_PYRAMID, cascade=True).train()
    seen = _record_stages(model)
    batch = _train_batch(model)
    model(**batch, mode="loss")
    shapes = [tuple(s["img_shape"]) for s in batch["data_samples"]]  # clip to each image, not the padded 96x96
    assert shapes == [(64, 64), (80, 96)]
    for k in range(2):
        deltas = seen[k]["deltas"].split([len(p) for p in seen[k]["proposals"]])
        for i, (height, width) in enumerate(shapes):
            expected = _decode_by_hand(deltas[i], seen[k]["proposals"][i], CASCADE_REG_WEIGHTS[k], height, width)
            expected = expected[(expected[:, 2] > expected[:, 0]) & (expected[:, 3] > expected[:, 1])]
            got = seen[k + 1]["proposals"][i]
            torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-4)
            assert not got.requires_grad
    # stage 0 sampled box_batch_size_per_image boxes per image; the later stages keep them all
    assert [len(p) for p in seen[0]["proposals"]] == [32, 32]
    assert [len(p) for p in seen[2]["proposals"]] == [32, 32]


def test_cascade_inference_averages_scores_and_uses_last_stage_boxes():
    """At inference stage k + 1's boxes are stage k's decoded boxes; every detection's score is the stages' mean
    probability of its class for one box, and its box is that box as the last stage regresses it."""
    model = tiny_mask_rcnn(CASCADE_PYRAMID, cascade=True, box_score_thresh=0.0).eval()
    seen = _record_stages(model)
    image = _image_with_squares(48, 64, [(8, 6, 30, 40)], [0])["inputs"]
    sample = {"img_shape": (48, 64), "ori_shape": (48, 64), "scale_factor": (1.0, 1.0)}
    batch = model.data_preprocessor({"inputs": [image], "data_samples": [sample]}, False)
    with torch.no_grad():
        (pred,) = model(**batch, mode="predict")
    for k in range(2):
        expected = _decode_by_hand(seen[k]["deltas"], seen[k]["proposals"][0], CASCADE_REG_WEIGHTS[k], 48, 64)
        torch.testing.assert_close(seen[k + 1]["proposals"][0], expected, rtol=1e-5, atol=1e-4)
    final = _decode_by_hand(seen[2]["deltas"], seen[2]["proposals"][0], CASCADE_REG_WEIGHTS[2], 48, 64)
    mean_prob = torch.stack([s["logits"].softmax(-1) for s in seen]).mean(0)
    num = len(pred["boxes"])
    assert num > 0 and pred["masks"].shape == (num, 48, 64) and pred["masks"].dtype == torch.bool
    for box, label, score in zip(pred["boxes"], pred["labels"], pred["scores"], strict=True):
        same_box = (final - box).abs().amax(-1) < 1e-3
        assert same_box.any()
        assert ((mean_prob[same_box, label + 1] - score).abs() < 1e-5).any()


def test_cascade_predictions_are_in_original_image_coordinates():
    """As for Mask R-CNN: the second sample's original image was 96x256, so its boxes are the first's stretched."""
    model = tiny_mask_rcnn(CASCADE_PYRAMID, cascade=True, box_score_thresh=0.0).eval()
    image = _image_with_squares(48, 64, [(8, 6, 30, 40)], [0])["inputs"]
    same = {"img_shape": (48, 64), "ori_shape": (48, 64), "scale_factor": (1.0, 1.0)}
    resized = {"img_shape": (48, 64), "ori_shape": (96, 256), "scale_factor": (0.25, 0.5)}
    batch = model.data_preprocessor({"inputs": [image, image], "data_samples": [same, resized]}, False)
    with torch.no_grad():
        first, second = model(**batch, mode="predict")
    num = len(first["boxes"])
    assert num > 0 and len(second["boxes"]) == num and set(first) >= {"boxes", "labels", "scores", "masks"}
    assert second["masks"].shape == (num, 96, 256)
    torch.testing.assert_close(second["boxes"], first["boxes"] * torch.tensor([4.0, 2.0, 4.0, 2.0]))
    torch.testing.assert_close(second["scores"], first["scores"])
    assert ((second["labels"] >= 0) & (second["labels"] < NUM_CLASSES)).all()


def test_cascade_training_lowers_the_loss():
    model = tiny_mask_rcnn(CASCADE_PYRAMID, cascade=True).train()
    batch = _train_batch(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    totals = []
    for _ in range(12):
        loss = sum(model(**batch, mode="loss").values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        totals.append(loss.item())
    assert all(math.isfinite(t) for t in totals)
    assert sum(totals[-3:]) < 0.8 * sum(totals[:3]), totals


def test_cascade_needs_class_agnostic_boxes_and_matching_stage_settings():
    model = tiny_mask_rcnn(CASCADE_PYRAMID, cascade=True).train()
    for stage in model.model.roi_heads.stages:
        stage.box_predictor = box_predictor(64, NUM_CLASSES)  # class-specific
    with pytest.raises(ValueError, match="class-agnostic"):
        model(**_train_batch(model), mode="loss")
    with pytest.raises(ValueError, match="3 cascade IoU thresholds but 2 sets"):
        tiny_mask_rcnn(CASCADE_PYRAMID, cascade=True, cascade_reg_weights=CASCADE_REG_WEIGHTS[:2])


# --- RoI pooling on the pyramid -----------------------------------------------------------------------------------


def pyramid_and_boxes(seed: int = 0):
    """Maps p2-p5 of two 512x512 images and boxes of every size, some crossing the border."""
    g = torch.Generator().manual_seed(seed)
    maps = {f"p{lv}": torch.randn(2, 3, 512 >> lv, 512 >> lv, generator=g) for lv in range(2, 6)}
    boxes = []
    for _ in range(2):
        xy = torch.rand(40, 2, generator=g) * 500 - 20
        wh = torch.exp(torch.rand(40, 2, generator=g) * math.log(500)) + 1  # 2 to 500 px
        boxes.append(torch.cat([xy, xy + wh], dim=1))
    return maps, boxes


def test_pyramid_roi_align_unaligned_equals_torchvision():
    maps, boxes = pyramid_and_boxes()
    names, shapes = list(maps), [(512, 512)] * 2
    ours = PyramidRoIAlign(names, (4, 8, 16, 32), 7, sampling_ratio=2, aligned=False)(maps, boxes, shapes)
    reference = MultiScaleRoIAlign(names, output_size=7, sampling_ratio=2)(maps, boxes, shapes)
    torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-5)


def test_pyramid_roi_align_reads_each_box_from_its_fpn_level_with_half_pixel_alignment():
    maps, _ = pyramid_and_boxes()
    # sqrt(area) 56 -> p2 (level 2.0), 223 -> p3 (3.99), 224 -> p4, 448 -> p5, 1000 -> clamped to p5, 10 -> p2
    sides, levels = [56.0, 223.0, 224.0, 448.0, 1000.0, 10.0], [2, 3, 4, 5, 5, 2]
    boxes = [torch.tensor([[5.0, 7.0, 5.0 + s, 7.0 + s] for s in sides])]
    pooled = PyramidRoIAlign(list(maps), (4, 8, 16, 32), 7)(maps, boxes, [(512, 512)])
    for i, level in enumerate(levels):
        roi = torch.cat([torch.zeros(1, 1), boxes[0][i : i + 1]], dim=1)
        expected = roi_align(maps[f"p{level}"][:1], roi, 7, 1.0 / 2**level, 0, aligned=True)
        torch.testing.assert_close(pooled[i : i + 1], expected)


def test_pyramid_roi_align_rejects_non_consecutive_strides():
    with pytest.raises(ValueError, match=r"consecutive power-of-two stride.*\(4, 16\)"):
        PyramidRoIAlign(["p2", "p4"], (4, 16), 7)


# --- masks: detectron2's targets and paste ---------------------------------------------------------------------


def _random_masks(n: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    return (torch.rand(n, h, w, generator=torch.Generator().manual_seed(seed)) > 0.5).to(torch.uint8)


def test_mask_targets_of_whole_pixel_boxes_are_the_mask_under_the_box():
    gt = _random_masks(2, 20, 24)
    rois = torch.tensor([[2.0, 3.0, 10.0, 11.0], [5.0, 0.0, 21.0, 16.0]])  # 8 and 16 px
    targets = mask_targets(gt, rois, torch.tensor([1, 0]), 8)
    torch.testing.assert_close(targets[0], gt[1, 3:11, 2:10].float())  # one sample per pixel centre
    # a 16 px box at 8x8: each bin averages a 2x2 block of pixels, and half or more set counts as set
    blocks = gt[0, 0:16, 5:21].float().reshape(8, 2, 8, 2).mean((1, 3))
    torch.testing.assert_close(targets[1], (blocks >= 0.5).float())


def test_mask_loss_is_the_binary_cross_entropy_of_each_rois_class():
    gt = [_random_masks(2, 16, 16, seed=1)]
    rois, idxs, labels = [torch.tensor([[0.0, 0.0, 8.0, 8.0], [4.0, 4.0, 12.0, 12.0]])], [torch.tensor([1, 0])], [
        torch.tensor([2, 1])]
    logits = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    x0, x1 = logits[0, 1], logits[1, 2]  # RoI 0 -> mask 1 -> class 1; RoI 1 -> mask 0 -> class 2
    t0, t1 = gt[0][1, 0:8, 0:8].float(), gt[0][0, 4:12, 4:12].float()
    bce = torch.cat([(torch.clamp(x, min=0) - x * t + torch.log1p(torch.exp(-x.abs()))).flatten()
                     for x, t in ((x0, t0), (x1, t1))]).mean()
    torch.testing.assert_close(mask_loss(logits, rois, gt, labels, idxs), bce)
    empty = mask_loss(logits[:0].requires_grad_(), [rois[0][:0]], gt, labels, [idxs[0][:0]])
    assert empty.item() == 0.0 and empty.requires_grad


def test_paste_masks_puts_each_mask_exactly_on_its_box_and_inverts_mask_targets():
    masks = _random_masks(2, 8, 8, seed=3).float()
    boxes = torch.tensor([[2.0, 3.0, 10.0, 11.0], [20.0, 1.0, 28.0, 9.0]])
    pasted = paste_masks(masks, boxes, (16, 32), chunk_pixels=16 * 32)  # one mask per chunk
    torch.testing.assert_close(pasted[0, 3:11, 2:10], masks[0])
    torch.testing.assert_close(pasted[1, 1:9, 20:28], masks[1])
    outside = torch.ones(2, 16, 32, dtype=torch.bool)
    outside[0, 2:12, 1:11] = outside[1, 0:10, 19:29] = False  # the box and its 1-pixel bilinear rim
    assert (pasted[outside] == 0).all()
    # the targets cropped from the pasted masks are the masks again: both use the same pixel alignment
    back = mask_targets((pasted >= 0.5).to(torch.uint8), boxes, torch.tensor([0, 1]), 8)
    torch.testing.assert_close(back, masks)


# --- box losses: detectron2's L1, torchvision's smooth-L1 (beta 1/9) as a setting -------------------------------


def _sampled_rois(seed: int = 4) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    labels = [torch.randint(0, 4, (12,), generator=g), torch.randint(0, 4, (9,), generator=g)]
    targets = [torch.randn(12, 4, generator=g), torch.randn(9, 4, generator=g)]
    return torch.randn(21, 4, generator=g), torch.randn(21, 16, generator=g), labels, targets


def test_fast_rcnn_loss_is_torchvisions_at_beta_one_ninth_and_l1_at_zero():
    logits, deltas, labels, targets = _sampled_rois()
    for ours, theirs in zip(fast_rcnn_loss(logits, deltas, labels, targets, beta=1 / 9),
                            fastrcnn_loss(logits, deltas, labels, targets), strict=True):
        torch.testing.assert_close(ours, theirs)
    _, l1 = fast_rcnn_loss(logits, deltas, labels, targets)
    lab, tgt = torch.cat(labels), torch.cat(targets)
    by_hand = sum((deltas[i].view(4, 4)[lab[i]] - tgt[i]).abs().sum() for i in range(21) if lab[i] > 0) / 21
    torch.testing.assert_close(l1, by_hand)
    # class-agnostic deltas [N, 4] are the same deltas for every class
    _, agnostic = fast_rcnn_loss(logits, deltas[:, :4], labels, targets)
    _, repeated = fast_rcnn_loss(logits, deltas[:, :4].repeat(1, 4), labels, targets)
    torch.testing.assert_close(agnostic, repeated)


@pytest.mark.parametrize("beta", [1 / 9, 0.0])
def test_rpn_loss_is_torchvisions_with_the_chosen_beta(beta):
    g = torch.Generator().manual_seed(5)
    labels = [torch.randint(-1, 2, (300,), generator=g).float() for _ in range(2)]
    targets = [torch.randn(300, 4, generator=g) for _ in range(2)]
    objectness, deltas = torch.randn(600, 1, generator=g), torch.randn(600, 4, generator=g)
    args = (AnchorGenerator(((16,),), ((1.0,),)), rpn_head(8, 1), 0.7, 0.3, 64, 0.5, {}, {}, 0.7)
    torch.manual_seed(0)  # the anchor sampler draws with torch's global generator
    ours = RPN(*args, box_loss_beta=beta).compute_loss(objectness, deltas, labels, targets)
    torch.manual_seed(0)
    reference = RegionProposalNetwork(*args)
    theirs = reference.compute_loss(objectness, deltas, labels, targets)
    torch.testing.assert_close(ours[0], theirs[0])
    if beta:
        torch.testing.assert_close(ours[1], theirs[1])
    else:  # L1 over the same sampled anchors
        torch.manual_seed(0)
        positive, negative = (torch.cat(m) for m in reference.fg_bg_sampler(labels))
        l1 = (deltas - torch.cat(targets)).abs().sum(1)[positive.bool()].sum() / (positive.sum() + negative.sum())
        torch.testing.assert_close(ours[1], l1)

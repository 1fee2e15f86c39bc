"""Mask R-CNN over every backbone/adapter that can feed it: losses and gradients, predictions in original pixels."""

from __future__ import annotations

import math

import pytest
import torch
from tiny_pyramids import tiny_pyramids

from densevit.engine.data import DataPreprocessor
from densevit.heads.rcnn import box_head, box_predictor, mask_head, mask_predictor, rpn_head
from densevit.models.mask_rcnn import MaskRCNN

pytestmark = pytest.mark.usefixtures("one_thread")

NUM_CLASSES = 3
WIDTH = 32


PYRAMIDS = tiny_pyramids(WIDTH)


def tiny_mask_rcnn(name: str, **kwargs) -> MaskRCNN:
    torch.manual_seed(0)
    return MaskRCNN(
        backbone=PYRAMIDS[name](),
        num_classes=NUM_CLASSES,
        data_preprocessor=DataPreprocessor(),
        anchor_sizes=(8, 16, 32, 64, 128),
        box_batch_size_per_image=32,
        rpn_post_nms_top_n_train=100,
        rpn_post_nms_top_n_test=50,
        # ViTDet's heads with one conv each
        rpn_head_module=rpn_head(WIDTH, num_convs=1),
        box_head_module=box_head(WIDTH, conv_dim=WIDTH, num_convs=1, fc_dim=64),
        box_predictor_module=box_predictor(64, NUM_CLASSES),
        mask_head_module=mask_head(WIDTH, conv_dim=WIDTH, num_convs=1),
        mask_predictor_module=mask_predictor(WIDTH, WIDTH, NUM_CLASSES),
        **kwargs,
    )


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


@pytest.mark.parametrize("name", sorted(PYRAMIDS))
def test_losses_reach_every_parameter(name):
    model = tiny_mask_rcnn(name).train()
    items = [_image_with_squares(64, 64, [(8, 10, 40, 44)], [0]),
             _image_with_squares(80, 96, [(4, 4, 30, 26), (50, 30, 90, 76)], [2, 1])]  # batch pads to 96x96
    batch = model.data_preprocessor({"inputs": [it["inputs"] for it in items],
                                     "data_samples": [it["data_samples"] for it in items]}, True)
    assert batch["inputs"].shape == (2, 3, 96, 96)
    losses = model(**batch, mode="loss")
    assert set(losses) == {"loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg", "loss_mask"}
    assert all(math.isfinite(v.item()) for v in losses.values()), losses
    sum(losses.values()).backward()
    no_grad = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert no_grad == []
    backbone_grads = [p.grad.abs().sum().item() for p in model.backbone.parameters() if p.requires_grad]
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

"""Top-down pose model: UDP-target loss, flip-test symmetry, DARK-UDP decoding back to original pixels, rescoring."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from densevit.backbones.vitpose import ViTPoseBackbone
from densevit.heads.pose import ClassicPoseHead, SimplePoseHead, joints_mse_loss
from densevit.models.base import Batch, SupportsTTA
from densevit.models.pose import TopDownPose, rescore
from densevit.ops.keypoints import flip_heatmaps, udp_heatmaps

pytestmark = pytest.mark.usefixtures("one_thread")

K = 5
PAIRS = [(1, 2), (3, 4)]
H, W = 64, 48


def tiny_model(head=SimplePoseHead, **kwargs) -> TopDownPose:
    backbone = ViTPoseBackbone(img_size=(H, W), embed_dim=32, depth=2, num_heads=2)
    return TopDownPose(backbone=backbone, head=head(32, K), num_keypoints=K, flip_pairs=PAIRS, **kwargs)


def sample(keypoints=None, **extra) -> dict:
    s = {"img_id": 1, "img_path": "a.jpg", "ori_shape": (480, 640), "img_shape": (H, W),
         "center": np.array([(W - 1) / 2, (H - 1) / 2]), "scale": np.array([W - 1.0, H - 1.0]), "rotation": 0.0,
         "bbox": [0, 0, W, H], "bbox_score": 1.0}
    if keypoints is not None:
        s.update(keypoints=np.asarray(keypoints, np.float32), keypoints_visible=np.ones(K, np.float32))
    return {**s, **extra}


@pytest.mark.parametrize("head", [ClassicPoseHead, SimplePoseHead])
def test_loss_is_weighted_mse_on_udp_targets_and_trains(head):
    torch.manual_seed(0)
    model = tiny_model(head)
    rng = np.random.default_rng(0)
    kpts = [rng.uniform([0, 0], [W - 1, H - 1], size=(K, 2)) for _ in range(2)]
    samples = [sample(k) for k in kpts]
    samples[1]["keypoints_visible"][3] = 0
    batch = Batch(torch.randn(2, 3, H, W), samples)
    losses = model.loss(batch)
    targets, weights = zip(*(udp_heatmaps(s["keypoints"], s["keypoints_visible"], (W, H), (W // 4, H // 4))
                             for s in samples), strict=True)
    expect = joints_mse_loss(model(batch.inputs), torch.from_numpy(np.stack(targets)),
                             torch.from_numpy(np.stack(weights)))
    torch.testing.assert_close(losses["loss_heatmap"], expect)
    losses["loss_heatmap"].backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_flip_test_heatmaps_of_a_mirrored_crop_are_mirrored():
    torch.manual_seed(1)
    model = tiny_model(ClassicPoseHead).eval()
    x = torch.randn(2, 3, H, W)
    plain = model.predict_heatmaps(x)
    mirrored = model.predict_heatmaps(x.flip(-1))
    # Any network: the flip-test average of the mirrored crop is the mirror (pairs swapped) of the crop's.
    torch.testing.assert_close(mirrored, flip_heatmaps(plain, PAIRS), atol=1e-5, rtol=1e-5)


class Blobs(nn.Module):
    """A stand-in backbone whose 'features' are the input averaged over 4x4 cells (one channel per joint)."""

    output_shapes = ()

    def forward(self, x):
        return [F.avg_pool2d(x, 4)]


def test_set_tta_switches_the_flip_test_that_is_on_by_default():
    model = tiny_model().eval()
    assert isinstance(model, SupportsTTA) and model.flip_test  # ViTPose tests with flips by default
    crops = torch.randn(1, 3, H, W)
    flipped = model.predict_heatmaps(crops)
    model.set_tta(False)
    torch.testing.assert_close(model.predict_heatmaps(crops), model(crops))
    assert not torch.allclose(flipped, model(crops))


def test_flip_test_mirrored_crop_gives_mirrored_joints():
    rng = np.random.default_rng(2)
    kpts = rng.uniform([6, 6], [W - 7, H - 7], size=(K, 2))
    ys, xs = np.mgrid[0:H, 0:W]
    # Joint k's channel: an anisotropic blob at kpts[k], so that the decoded joints are sub-pixel and asymmetric.
    x = np.stack([np.exp(-((xs - px) ** 2) / 40 - (ys - py) ** 2 / 70) for px, py in kpts])
    x = torch.from_numpy(x).float()[None]
    model = TopDownPose(backbone=Blobs(), head=nn.Identity(), num_keypoints=K, flip_pairs=PAIRS).eval()
    model.head.forward = lambda features: features[-1]
    # center / scale make the crop affine the identity: predicted joints are in crop pixels.
    plain = model.predict(Batch(x, [sample()]))[0]
    mirrored = model.predict(Batch(x.flip(-1), [sample()]))[0]
    swap = [0, 2, 1, 4, 3]
    expect = plain["keypoints"][swap].copy()
    expect[:, 0] = W - 1 - expect[:, 0]
    # Not exact: the reference's mixed derivative uses one diagonal ((x+1, y+1), (x-1, y-1)), which a mirror turns
    # into the other; both are second-order estimates, so the joints agree to a few hundredths of a pixel.
    np.testing.assert_allclose(mirrored["keypoints"], expect, atol=0.05)
    np.testing.assert_allclose(mirrored["keypoint_scores"], plain["keypoint_scores"][swap], atol=1e-6)
    assert np.abs(plain["keypoints"][0] - kpts[0]).max() < 2  # the unpaired joint sits on its blob


class FixedHeatmaps(nn.Module):
    """A head that returns given heatmaps whatever the features (to test decoding alone)."""

    def __init__(self, heatmaps: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("heatmaps", heatmaps)

    def forward(self, features):
        return self.heatmaps.expand(features[-1].shape[0], -1, -1, -1)


def test_predict_decodes_to_original_pixels_and_rescores():
    h, w = 256, 192  # ViTPose's crop: the 11x11 blur needs maps larger than the tiny ones
    crop_kpts = np.array([[30.3, 42.7], [130.2, 60.1], [94.0, 140.5], [45.5, 200.2], [155.9, 133.3]])
    maps, _ = udp_heatmaps(crop_kpts, np.ones(K), (w, h), (w // 4, h // 4))
    maps[4] *= 0.1  # one unconfident joint: left out of the instance score
    backbone = ViTPoseBackbone(img_size=(h, w), embed_dim=32, depth=1, num_heads=2)
    model = TopDownPose(backbone=backbone, head=FixedHeatmaps(torch.from_numpy(maps)[None]), num_keypoints=K,
                        flip_pairs=PAIRS, flip_test=False).eval()
    center, scale = np.array([300.0, 200.0]), np.array([150.0, 200.0])
    crop = sample(center=center, scale=scale, bbox_score=0.8, img_shape=(h, w))
    out = model.predict(Batch(torch.zeros(1, 3, h, w), [crop]))[0]
    # ViTPose 0.x transform_preds with UDP: x = hx * box_w / (hm_w - 1) + cx - box_w / 2.
    hm_size = np.array([w // 4 - 1, h // 4 - 1])
    expect = crop_kpts / ([w - 1, h - 1] / hm_size) * scale / hm_size + center - scale / 2
    np.testing.assert_allclose(out["keypoints"], expect, atol=0.05 * scale[1] / (h - 1))
    scores = out["keypoint_scores"]
    assert scores[4] < 0.2 < scores[:4].min()
    assert out["score"] == pytest.approx(0.8 * scores[:4].mean())
    assert out["img_id"] == 1 and out["keypoints"].dtype == np.float32


def test_rescore_without_confident_joints_is_zero():
    assert rescore(0.9, np.array([0.1, 0.05])) == 0.0
    assert rescore(0.5, np.array([0.3, 0.1, 0.5])) == pytest.approx(0.5 * 0.4)


def test_bad_input_errors_name_the_problem():
    backbone = ViTPoseBackbone(img_size=(H, W), embed_dim=32, depth=1, num_heads=2)
    with pytest.raises(ValueError, match=r"flip_pairs \[\(4, 5\)\].*0\.\.4"):
        TopDownPose(backbone=backbone, head=SimplePoseHead(32, K), num_keypoints=K, flip_pairs=[(1, 2), (4, 5)])
    model = tiny_model()
    bad = sample(np.zeros((17, 2)))
    with pytest.raises(ValueError, match=r"a\.jpg.*'keypoints' has shape \(17, 2\), expected \(5, 2\)"):
        model.loss(Batch(torch.zeros(1, 3, H, W), [bad]))
    with pytest.raises(KeyError, match="keypoints"):
        model.loss(Batch(torch.zeros(1, 3, H, W), [sample()]))
    no_box = sample()
    del no_box["center"]
    with pytest.raises(KeyError, match=r"a\.jpg.*\['center'\]"):
        model.predict(Batch(torch.zeros(1, 3, H, W), [no_box]))
    with pytest.raises(ValueError, match="img_shape"):
        model.predict(Batch(torch.zeros(1, 3, H, W), [sample(img_shape=(32, 24))]))

"""UperNet, FCN and MLP heads: shapes, use of every level, and forward/backward on every adapter."""

from __future__ import annotations

import pytest
import torch
from tiny_pyramids import tiny_pyramids
from torch import nn

from densevit.heads.seg_heads import FCNHead, MLPHead
from densevit.heads.uper import UPerHead
from densevit.models.base import Batch
from densevit.models.segmentor import Segmentor

NUM_CLASSES = 5


def pyramid(batch: int = 2, width: int = 16, size: int = 64) -> list[torch.Tensor]:
    """Maps at strides 4, 8, 16, 32 of a ``size`` x ``size`` image."""
    return [torch.randn(batch, width, size // s, size // s, requires_grad=True) for s in (4, 8, 16, 32)]


def test_uper_head_uses_every_level():
    head = UPerHead((16,) * 4, NUM_CLASSES, channels=32).eval()
    feats = pyramid()
    logits = head(feats)
    assert logits.shape == (2, NUM_CLASSES, 16, 16)
    logits.square().sum().backward()
    for level, f in enumerate(feats):
        assert f.grad is not None and f.grad.abs().sum() > 0, f"level {level} does not reach the logits"


def test_uper_head_structure_follows_mmseg():
    head = UPerHead((96, 192, 384, 768), 150)
    assert [stage[0].output_size for stage in head.psp.stages] == [1, 2, 3, 6]
    assert head.psp.bottleneck[0].in_channels == 768 + 4 * 512 and head.psp.bottleneck[0].kernel_size == (3, 3)
    assert [c[0].in_channels for c in head.lateral_convs] == [96, 192, 384]
    assert head.fuse[0].in_channels == 4 * 512 and head.fuse[0].out_channels == 512
    assert isinstance(head.fuse[1], nn.BatchNorm2d) and isinstance(head.fuse[2], nn.ReLU)
    aux = FCNHead(384, 150)
    assert aux.convs[0][0].out_channels == 256 and aux.cls[1].out_channels == 150


def test_heads_check_their_inputs():
    with pytest.raises(ValueError, match=r"built for input channels \(16, 16, 16, 16\)"):
        UPerHead((16,) * 4, NUM_CLASSES)(pyramid(width=8))
    with pytest.raises(ValueError, match="at least two"):
        UPerHead((16,), NUM_CLASSES)


@pytest.mark.parametrize("head", [FCNHead(16, NUM_CLASSES, channels=8, num_convs=2), MLPHead((16,) * 4, NUM_CLASSES)])
def test_small_heads_give_logits_at_the_first_map(head):
    feats = pyramid()[: len(head.in_channels)]
    assert head(feats).shape == (2, NUM_CLASSES, 16, 16)


ADAPTERS = tiny_pyramids(32, top_level=False)


@pytest.mark.parametrize("name", sorted(ADAPTERS))
def test_upernet_forward_backward_on_adapter(name):
    torch.manual_seed(0)
    adapter = ADAPTERS[name]()
    strides = {s.stride: s.channels for s in adapter.output_shapes}
    channels = tuple(strides[s] for s in (4, 8, 16, 32))
    model = Segmentor(
        backbone=adapter,
        decode_head=UPerHead(channels, NUM_CLASSES, channels=32),
        aux_head=FCNHead(strides[16], NUM_CLASSES, channels=16),
    )
    images = torch.randn(2, 3, 64, 64)
    samples = [{"gt_sem_seg": torch.randint(0, NUM_CLASSES, (64, 64))} for _ in range(2)]
    assert model(images).shape == (2, NUM_CLASSES, 16, 16)
    losses = model.loss(Batch(images, samples))
    assert set(losses) == {"loss_seg", "loss_aux", "acc_seg"}
    (losses["loss_seg"] + losses["loss_aux"]).backward()
    first = next(p for p in adapter.parameters() if p.requires_grad)
    assert first.grad is not None and first.grad.abs().sum() > 0
    assert all(p.grad is not None for p in model.decode_head.parameters())


def test_segmentor_learns_a_fixed_batch():
    torch.manual_seed(0)
    model = Segmentor(backbone=ADAPTERS["vit+simple_pyramid"](), decode_head=UPerHead((32,) * 4, 3, channels=16))
    # 16x16 blocks (one ViT token each) whose colour gives the class
    target = torch.randint(0, 3, (2, 4, 4)).repeat_interleave(16, 1).repeat_interleave(16, 2)  # [2, 64, 64]
    colours = torch.tensor([[-1.0, 0.0, 1.0], [1.0, -1.0, 0.0], [0.0, 1.0, -1.0]])
    images = colours[target].permute(0, 3, 1, 2) + 0.1 * torch.randn(2, 3, 64, 64)
    samples = [{"gt_sem_seg": t} for t in target]
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(20):
        loss = model.loss(Batch(images, samples))["loss_seg"]
        losses.append(loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert losses[-1] < 0.5 * losses[0]


def test_classifier_init_is_mmseg_by_default_and_pytorch_when_asked():
    mmseg = UPerHead((16,) * 4, 150, channels=512).cls[1]
    assert abs(mmseg.weight.std().item() - 0.01) < 1e-3 and not mmseg.bias.any()
    default = FCNHead(16, 150, channels=512, cls_init_std=None).cls[1]
    bound = 1 / 512**0.5  # PyTorch's conv init: uniform within 1/sqrt(fan_in) for weights and bias
    assert default.weight.abs().max() <= bound and default.weight.std() > 2 * 0.01
    assert default.bias.abs().max() <= bound and default.bias.any()

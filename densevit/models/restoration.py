"""Image restoration (denoising, deblurring, super-resolution): a ViT or adapter + the restoration decoder.

Pixel space: the data preprocessor normalises images with its mean / std (ImageNet statistics by default, what a
pretrained ViT expects); the model takes the same ``mean`` / ``std`` (0-255 units) to get the image back in
[0, 1] for the decoder's full-resolution branch and global residual, and predicts [0, 1] images. So the config's
``data_preprocessor`` and the model must agree on mean / std (both default to ImageNet's).

Any input size: the raw network reflect-pads the image bottom/right to a multiple of the backbone's largest
stride (as Restormer pads to x8) and crops the output back. ``tile``: inference on overlapping tiles whose outputs
are averaged where they overlap (SwinIR / Restormer ``--tile``), so memory stays flat as images grow.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from densevit.backbones.interface import output_shapes
from densevit.heads.restoration import RestorationHead
from densevit.models.base import IMAGENET_MEAN, IMAGENET_STD, Batch

__all__ = ["ImageRestorer", "charbonnier_loss", "l1_loss", "pad_reflect", "tile_starts", "tiled_forward"]

# --- losses --------------------------------------------------------------------------------------------------


def l1_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Mean absolute error (SwinIR, Restormer)."""
    return (pred - target).abs().mean()


def charbonnier_loss(pred: Tensor, target: Tensor, eps: float = 1e-3) -> Tensor:
    """Mean of sqrt((pred - target)^2 + eps^2), a smooth L1 (Lai et al.; MPRNet's eps = 1e-3 on [0, 1] images)."""
    return torch.sqrt((pred - target) ** 2 + eps * eps).mean()


# --- sizes and tiles ---------------------------------------------------------------------------------------------


def pad_reflect(x: Tensor, multiple: int) -> Tensor:
    """Pad [B, C, H, W] bottom/right to multiples of ``multiple`` by reflection (replication when the image is
    smaller than the padding, where reflection is undefined)."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if not ph and not pw:
        return x
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode)


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Tile origins along one axis, SwinIR's rule: every ``tile - overlap`` from 0, plus one flush with the end."""
    if tile >= length:
        return [0]
    return [*range(0, length - tile, tile - overlap), length - tile]


def tiled_forward(fn: Callable[[Tensor], Tensor], x: Tensor, tile: int, overlap: int, scale: int = 1) -> Tensor:
    """Run ``fn`` on overlapping ``tile`` x ``tile`` crops of x [B, C, H, W] -> [B, C', sH, sW], outputs averaged.

    The plain mean over the tiles covering each pixel (no feathering), as SwinIR and Restormer test; a tile larger
    than the image is the image.
    """
    if overlap < 0 or tile <= overlap:
        raise ValueError(f"tiled inference needs a tile larger than the overlap and an overlap >= 0, got tile {tile} "
                         f"and overlap {overlap}")
    h, w = x.shape[-2:]
    out: Tensor | None = None
    count = x.new_zeros((1, 1, h * scale, w * scale))
    for top in tile_starts(h, tile, overlap):
        for left in tile_starts(w, tile, overlap):
            piece = fn(x[..., top : top + tile, left : left + tile])
            if out is None:
                out = piece.new_zeros((*piece.shape[:2], h * scale, w * scale))
            rows = slice(top * scale, top * scale + piece.shape[-2])
            cols = slice(left * scale, left * scale + piece.shape[-1])
            out[..., rows, cols] += piece
            count[..., rows, cols] += 1
    return out / count


def quantise(image: Tensor) -> Tensor:
    """[0, 1] float image -> uint8, as BasicSR's tensor2img: clamp, x255, round half to even (float32)."""
    return (image.float().clamp(0, 1) * 255.0).round().to(torch.uint8)


# --- the model ---------------------------------------------------------------------------------------------------


class ImageRestorer(nn.Module):
    """Degraded image -> backbone (plain ViT or adapter) -> ``RestorationHead`` -> restored image at ``scale`` x.

    The head takes the backbone's maps with stride <= ``max_stride`` (the finest ones; a plain ViT's stride-16
    maps are summed), or ``head`` is injected (called as ``head(maps, image)``). ``image_residual`` (default: for
    scale 1 only, as SwinIR) adds the (bicubic-upsampled) input image to the output. Training: ``loss_fn`` (``l1_loss``
    or ``charbonnier_loss``) between the [0, 1] output and each sample's ``gt`` (uint8 [3, H, W]).
    Inference returns ``restored`` uint8 [3, H, W] at the ground-truth size; ``tile`` / ``tile_overlap`` (input
    pixels) switch to tiled inference.
    """

    def __init__(
        self,
        *,
        backbone: nn.Module,
        scale: int = 1,
        # default head
        channels: int = 64,
        shallow_blocks: int = 2,
        fuse_blocks: int = 2,
        max_stride: int = 16,
        image_residual: bool | None = None,
        head: nn.Module | None = None,
        # training
        loss_fn: Callable[[Tensor, Tensor], Tensor] = l1_loss,
        loss_weight: float = 1.0,
        # pixel space: the data preprocessor's normalisation, 0-255 units
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        # inference
        tile: int | None = None,
        tile_overlap: int = 32,
    ) -> None:
        super().__init__()
        shapes = output_shapes(backbone, "ImageRestorer")
        self.levels = [i for i, s in enumerate(shapes) if s.stride <= max_stride]
        if not self.levels:
            raise ValueError(f"ImageRestorer: no backbone map has stride <= max_stride={max_stride}; the backbone's "
                             f"strides are {tuple(s.stride for s in shapes)}")
        if head is None:
            head = RestorationHead([shapes[i].channels for i in self.levels], [shapes[i].stride for i in self.levels],
                                   channels, scale, shallow_blocks, fuse_blocks, image_residual)
        self.backbone = backbone
        self.head = head
        self.scale = scale
        # every map of the backbone must come out whole, so the image is padded to its largest stride
        self.size_multiple = max(s.stride for s in shapes)
        self.loss_fn = loss_fn
        self.loss_weight = loss_weight
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.tile = tile
        self.tile_overlap = tile_overlap
        if tile is not None and tile <= tile_overlap:
            raise ValueError(f"ImageRestorer: tile ({tile}) must be larger than tile_overlap ({tile_overlap})")

    def forward(self, inputs: Tensor) -> Tensor:
        """inputs: [B, 3, H, W] normalised, any size -> [B, 3, scale * H, scale * W] in about [0, 1] (unclamped)."""
        h, w = inputs.shape[-2:]
        padded = pad_reflect(inputs, self.size_multiple)
        image = (padded * self.std + self.mean) / 255.0
        maps = self.backbone(padded)
        out = self.head([maps[i] for i in self.levels], image)
        return out[..., : h * self.scale, : w * self.scale]

    def restore(self, inputs: Tensor) -> Tensor:
        """Like ``forward``, on tiles of ``self.tile`` when set."""
        if self.tile is None:
            return self(inputs)
        return tiled_forward(self, inputs, self.tile, self.tile_overlap, self.scale)

    def _targets(self, samples: Sequence[dict], device: torch.device) -> list[Tensor]:
        missing = [i for i, s in enumerate(samples) if "gt" not in s]
        if missing:
            raise KeyError(f"ImageRestorer: samples {missing} of the batch have no 'gt' image")
        return [s["gt"].to(device=device, dtype=torch.float32) / 255.0 for s in samples]

    def loss(self, batch: Batch) -> dict[str, Tensor]:
        """``loss_fn`` between each image's output (its own ``img_shape`` x scale region) and its ``gt``."""
        pred = self(batch.inputs)
        targets = self._targets(batch.samples, pred.device)
        losses = []
        for p, gt, sample in zip(pred, targets, batch.samples, strict=True):
            h, w = (int(v) * self.scale for v in sample["img_shape"])
            if gt.shape[-2:] != (h, w):
                raise ValueError(f"ImageRestorer: image {sample.get('img_path')}: gt is {tuple(gt.shape[-2:])}, "
                                 f"expected {h}x{w} (input {tuple(sample['img_shape'])} x scale {self.scale})")
            losses.append(self.loss_fn(p[:, :h, :w], gt))
        return {"loss_pixel": self.loss_weight * torch.stack(losses).mean()}

    def predict(self, batch: Batch) -> list[dict]:
        """Per image: its sample plus ``restored`` uint8 [3, scale * h, scale * w]."""
        sizes = [tuple(int(v) for v in s["img_shape"]) for s in batch.samples]
        if self.tile is None and len(set(sizes)) == 1:
            h, w = sizes[0]
            restored = list(self(batch.inputs[..., :h, :w]))
        else:
            restored = [self.restore(batch.inputs[i : i + 1, :, :h, :w])[0] for i, (h, w) in enumerate(sizes)]
        outs = []
        for image, sample in zip(restored, batch.samples, strict=True):
            if "gt" in sample and tuple(sample["gt"].shape[-2:]) != tuple(image.shape[-2:]):
                raise ValueError(f"ImageRestorer: image {sample.get('img_path')}: restored {tuple(image.shape[-2:])} "
                                 f"but gt {tuple(sample['gt'].shape[-2:])}")
            outs.append({**sample, "restored": quantise(image)})
        return outs

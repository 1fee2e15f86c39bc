"""Paired restoration data: ground-truth / degraded image folders matched by name, or degradations made on the fly.

Layouts (``gt_dir`` / ``lq_dir``; a ``*`` path component matches sequence folders, the same one on both sides):
    DIV2K                 DIV2K_train_HR / DIV2K_train_LR_bicubic/X4, lq_name "{}x4", scale 4
    Set5, Set14, B100,    <set>/HR / <set>/LR_bicubic/X4, lq_name "{}x4" (Manga109 in DAT / HiT: "{}_LRBI_x4")
    Urban100, Manga109
    GoPro                 GOPRO_Large/test/*/sharp / GOPRO_Large/test/*/blur (same file names per sequence)
    SIDD-style            Data/* / Data/*, gt_name "GT_SRGB_{}", lq_name "NOISY_SRGB_{}" (one folder per scene)
    densevit demo         restoration/val/gt / restoration/val/lq, or lq_x2 with lq_name "{}x2", scale 2
``gt_name`` / ``lq_name`` turn a shared key into file stems; any image suffix is accepted. Without ``lq_dir`` the
degraded image is made from the ground truth by ``degradations`` (callables on float32 [H, W, 3] images in [0, 1]
taking a ``np.random.RandomState``): ``GaussianNoise``, ``GaussianBlur``, ``BicubicDownsample``.

Training (``crop_size``): aligned random crops (``crop_size`` ground-truth pixels, ``crop_size / scale`` degraded
ones), horizontal flips and, with ``rot90``, vertical flips and transposes (BasicSR's augment); degradations are drawn
per patch. Testing (``seed``): every image's degradation draws from ``RandomState(seed)``, as the papers'
``np.random.seed(0)`` before each image. Ground truth larger than scale x the degraded image by less than the scale
(Set14's odd sizes) is cropped bottom/right to fit, as BasicSR does; any other disagreement is an error naming
both files.

Items: ``inputs`` the degraded image [3, h, w] (uint8 as read, or float32 in 0-255 units when degraded here:
unclipped, unquantised noise), ``data_samples``: img_id, img_path, gt_path, ori_shape, img_shape, ``gt`` uint8
[3, scale * h, scale * w], scale and set_name.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from densevit.datasets.io import ImageReader
from densevit.ops.degradations import add_gaussian_noise, gaussian_blur, imresize

__all__ = [
    "BicubicDownsample",
    "GaussianBlur",
    "GaussianNoise",
    "PairedImageDataset",
    "augment",
    "match_pairs",
    "paired_random_crop",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
Degradation = Callable[[np.ndarray, np.random.RandomState], np.ndarray]


# --- degradations (float32 [H, W, 3] in [0, 1], a RandomState) ---------------------------------------------------


def _draw(value: float | Sequence[float], rng: np.random.RandomState) -> float:
    """A fixed value, or one drawn uniformly from a (low, high) range."""
    if isinstance(value, int | float):
        return float(value)
    low, high = value
    return float(rng.uniform(low, high))


class GaussianNoise:
    """Additive white Gaussian noise, sigma in 0-255 units: fixed, or drawn per image / patch from (low, high)
    (blind training: (0, 50)); not clipped unless ``clip``."""

    def __init__(self, sigma: float | Sequence[float], clip: bool = False) -> None:
        self.sigma = sigma
        self.clip = clip

    def __call__(self, image: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
        """Noisy float32 copy of ``image``."""
        noisy = add_gaussian_noise(image, _draw(self.sigma, rng), rng)
        return np.clip(noisy, 0, 1) if self.clip else noisy


class GaussianBlur:
    """Isotropic Gaussian blur, sigma in pixels: fixed or drawn from (low, high)."""

    def __init__(self, sigma: float | Sequence[float], kernel_size: int = 0) -> None:
        self.sigma = sigma
        self.kernel_size = kernel_size

    def __call__(self, image: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
        """Blurred float32 copy of ``image``."""
        return gaussian_blur(image.astype(np.float32), _draw(self.sigma, rng), self.kernel_size)


class BicubicDownsample:
    """MATLAB ``imresize(img, 1 / scale, 'bicubic')``; ``quantise`` rounds to 8-bit levels as a saved LR PNG is."""

    def __init__(self, scale: int, quantise: bool = True) -> None:
        self.scale = scale
        self.quantise = quantise

    def __call__(self, image: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
        """The downscaled float32 image."""
        small = imresize(image.astype(np.float64), 1.0 / self.scale)
        if self.quantise:
            small = np.clip(np.floor(small * 255.0 + 0.5), 0, 255) / 255.0  # MATLAB's uint8 rounding
        return small.astype(np.float32)


# --- pairs, crops, flips -----------------------------------------------------------------------------------------


def _template_regex(template: str, where: str) -> re.Pattern:
    if template.count("{}") != 1:
        raise ValueError(f"{where} {template!r} must contain '{{}}' exactly once (where the shared name goes)")
    head, tail = template.split("{}")
    return re.compile(f"^{re.escape(head)}(.+){re.escape(tail)}$")


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _folders(pattern: Path) -> dict[str, Path]:
    """``*``-free path -> {"": path}; a path with one ``*`` component -> {matched name: folder}."""
    parts = pattern.parts
    stars = [i for i, p in enumerate(parts) if p == "*"]
    if not stars:
        if not pattern.is_dir():
            raise FileNotFoundError(f"image folder {pattern} does not exist")
        return {"": pattern}
    if len(stars) > 1 or any("*" in p for i, p in enumerate(parts) if i not in stars):
        raise ValueError(f"folder pattern {pattern}: only one whole '*' component is supported")
    base, rest = Path(*parts[: stars[0]]), Path(*parts[stars[0] + 1 :]) if stars[0] + 1 < len(parts) else Path()
    if not base.is_dir():
        raise FileNotFoundError(f"image folder {base} (of pattern {pattern}) does not exist")
    found = {d.name: d / rest for d in sorted(base.iterdir()) if (d / rest).is_dir()}
    if not found:
        raise FileNotFoundError(f"no folder matches {pattern}")
    return found


def match_pairs(gt_dir: str | Path, lq_dir: str | Path, gt_name: str = "{}",
                lq_name: str = "{}") -> list[tuple[Path, Path]]:
    """(ground truth, degraded) file pairs: a gt stem ``gt_name.format(key)`` pairs with ``lq_name.format(key)``.

    Files not named by the template on their side are ignored (SIDD keeps both in one folder); a ground truth
    without its degraded image, or a degraded image without its ground truth, is an error naming them.
    """
    gt_re, lq_re = _template_regex(gt_name, "gt_name"), _template_regex(lq_name, "lq_name")
    gt_folders, lq_folders = _folders(Path(gt_dir)), _folders(Path(lq_dir))
    pairs, unmatched_gt, unmatched_lq = [], [], []
    for seq in sorted(set(gt_folders) | set(lq_folders)):
        gts = {m.group(1): p for p in _image_files(gt_folders[seq])
               if (m := gt_re.match(p.stem))} if seq in gt_folders else {}
        lqs = {m.group(1): p for p in _image_files(lq_folders[seq])
               if (m := lq_re.match(p.stem))} if seq in lq_folders else {}
        pairs += [(gts[k], lqs[k]) for k in sorted(gts.keys() & lqs.keys())]
        unmatched_gt += [f"{gts[k]} (expected {lq_name.format(k)}.* in {lq_folders.get(seq, lq_dir)})"
                         for k in sorted(gts.keys() - lqs.keys())]
        unmatched_lq += [str(lqs[k]) for k in sorted(lqs.keys() - gts.keys())]
    if unmatched_gt:
        shown = ", ".join(unmatched_gt[:3])
        raise FileNotFoundError(f"{len(unmatched_gt)} ground-truth image(s) in {gt_dir} have no degraded image in "
                                f"{lq_dir} (lq_name {lq_name!r}): {shown}")
    if unmatched_lq:
        shown = ", ".join(unmatched_lq[:3])
        raise FileNotFoundError(f"{len(unmatched_lq)} degraded image(s) in {lq_dir} have no ground truth in {gt_dir} "
                                f"(gt_name {gt_name!r}, lq_name {lq_name!r}): {shown}")
    if not pairs:
        raise FileNotFoundError(f"no image pairs in {gt_dir} and {lq_dir} (gt_name {gt_name!r}, lq_name {lq_name!r})")
    return pairs


def paired_random_crop(gt: np.ndarray, lq: np.ndarray, gt_size: int, scale: int,
                       where: str = "") -> tuple[np.ndarray, np.ndarray]:
    """Aligned random crops: ``gt_size // scale`` degraded pixels and the ``gt_size`` ground-truth pixels they cover."""
    lq_size = gt_size // scale
    h, w = lq.shape[:2]
    if h < lq_size or w < lq_size:
        raise ValueError(f"{where}: the degraded image is {h}x{w}, smaller than the {lq_size}x{lq_size} crop "
                         f"(crop_size {gt_size} / scale {scale})")
    top, left = np.random.randint(0, h - lq_size + 1), np.random.randint(0, w - lq_size + 1)
    lq = lq[top : top + lq_size, left : left + lq_size]
    gt = gt[top * scale : (top + lq_size) * scale, left * scale : (left + lq_size) * scale]
    return gt, lq


def augment(images: Sequence[np.ndarray], flip: bool = True, rot90: bool = True) -> list[np.ndarray]:
    """The same random horizontal flip and (with ``rot90``) vertical flip and transpose of [H, W, C] arrays."""
    hflip = flip and np.random.rand() < 0.5
    vflip = rot90 and np.random.rand() < 0.5
    transpose = rot90 and np.random.rand() < 0.5
    out = []
    for img in images:
        if hflip:
            img = img[:, ::-1]
        if vflip:
            img = img[::-1]
        if transpose:
            img = img.transpose(1, 0, 2)
        out.append(np.ascontiguousarray(img))
    return out


# --- the dataset -------------------------------------------------------------------------------------------------


def _chw(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))


class PairedImageDataset(Dataset):
    """Ground-truth / degraded image pairs from two folders, or clean images degraded on the fly (module doc).

    ``cache_images`` keeps decoded images in memory (``densevit.datasets.io.ImageReader``): for small sets.
    """

    def __init__(
        self,
        gt_dir: str | Path,
        lq_dir: str | Path | None = None,
        *,
        gt_name: str = "{}",
        lq_name: str = "{}",
        scale: int = 1,
        degradations: Sequence[Degradation] = (),
        crop_size: int | None = None,
        flip: bool = False,
        rot90: bool = False,
        seed: int | None = None,
        name: str | None = None,
        cache_images: bool = False,
    ) -> None:
        if scale < 1:
            raise ValueError(f"PairedImageDataset: scale must be >= 1, got {scale}")
        if crop_size is not None and crop_size % scale:
            raise ValueError(f"PairedImageDataset: crop_size {crop_size} must be a multiple of the scale {scale}")
        if lq_dir is None:
            if not degradations:
                raise ValueError("PairedImageDataset: give lq_dir (degraded images on disk) or degradations (made "
                                 f"from the clean images of {gt_dir})")
            gt_re = _template_regex(gt_name, "gt_name")
            self.pairs: list[tuple[Path, Path | None]] = [
                (p, None) for folder in _folders(Path(gt_dir)).values() for p in _image_files(folder)
                if gt_re.match(p.stem)]
            if not self.pairs:
                raise FileNotFoundError(f"no images in {gt_dir} (gt_name {gt_name!r})")
        else:
            if degradations:
                raise ValueError(f"PairedImageDataset: degradations apply to clean images only, but lq_dir {lq_dir} "
                                 "already holds degraded ones")
            self.pairs = list(match_pairs(gt_dir, lq_dir, gt_name, lq_name))
        self.scale = scale
        self.degradations = list(degradations)
        self.crop_size = crop_size
        self.flip = flip
        self.rot90 = rot90
        self.seed = seed
        self.read_image = ImageReader(cache_images)
        self.name = name or Path(gt_dir).parent.name or str(gt_dir)

    @property
    def metainfo(self) -> dict:
        """Dataset facts saved into checkpoints."""
        return {"scale": self.scale, "set_name": self.name}

    def __len__(self) -> int:
        return len(self.pairs)

    def _degrade(self, gt: np.ndarray) -> np.ndarray:
        # per image in testing (the papers' fixed seed), per patch in training (from the seeded global generator)
        seed = self.seed if self.seed is not None else np.random.randint(2**31)
        rng = np.random.RandomState(seed)
        lq = gt.astype(np.float32) / 255.0
        for degradation in self.degradations:
            lq = degradation(lq, rng)
        return lq

    def __getitem__(self, index: int) -> dict:
        gt_path, lq_path = self.pairs[index]
        gt = self.read_image(gt_path)
        s = self.scale
        if lq_path is not None:
            lq = self.read_image(lq_path)
        else:
            gt = gt[: gt.shape[0] - gt.shape[0] % s, : gt.shape[1] - gt.shape[1] % s]  # modcrop: whole LR pixels
            if self.crop_size is not None:  # crop and flip the clean image first, so the noise is drawn per patch
                gt = paired_random_crop(gt, gt, self.crop_size, 1, str(gt_path))[0]
                if self.flip or self.rot90:
                    gt = augment([gt], self.flip, self.rot90)[0]
            lq = self._degrade(gt)
        (h, w), (gh, gw) = lq.shape[:2], gt.shape[:2]
        if (gh // s, gw // s) != (h, w):
            source = lq_path if lq_path is not None else "its degradations"
            raise ValueError(f"ground truth {gt_path} is {gh}x{gw} but the degraded image ({source}) is {h}x{w}; "
                             f"with scale {s} it must be {gh // s}x{gw // s}")
        gt = gt[: h * s, : w * s]
        if lq_path is not None and self.crop_size is not None:
            gt, lq = paired_random_crop(gt, lq, self.crop_size, s, str(lq_path))
            if self.flip or self.rot90:
                gt, lq = augment([gt, lq], self.flip, self.rot90)
        h, w = lq.shape[:2]
        inputs = _chw(lq) if lq.dtype == np.uint8 else _chw(lq.astype(np.float32) * 255.0)
        sample = {
            "img_id": index,
            "img_path": str(lq_path if lq_path is not None else gt_path),
            "gt_path": str(gt_path),
            "ori_shape": (h, w),
            "img_shape": (h, w),
            "gt": _chw(gt),
            "scale": s,
            "set_name": self.name,
        }
        return {"inputs": inputs, "data_samples": sample}

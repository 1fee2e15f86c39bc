"""Monocular depth datasets: NYUv2 (BTS split files, as distributed) and image / depth PNG folder pairs.

Depth PNGs are single-channel uint16; metres = value / ``depth_scale`` (1000 for NYUv2 millimetres, 256 for
KITTI); 0 marks pixels without a measurement. Items follow the task-model contract with ``gt_depth`` [H, W]
float32 metres aligned with the (transformed) image.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import albumentations as A
import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from densevit.datasets.depth_transforms import apply_depth_transforms
from densevit.datasets.io import decode_image, read_image
from densevit.datasets.transforms import seed_transforms

__all__ = ["DepthDataset", "DepthFolder", "DepthSample", "NYUDepth", "parse_split_file", "read_depth"]


class DepthSample(NamedTuple):
    """One entry of a split: image path, depth path (None: no ground truth) and focal length in pixels."""

    image: Path
    depth: Path | None
    focal: float | None = None


def parse_split_file(path: str | Path) -> list[DepthSample]:
    """Read a BTS split file: lines ``<rgb> <depth> <focal>``; paths relative (a leading ``/`` is dropped).

    A depth entry ``None`` gives ``depth=None``. Blank lines are ignored; anything else raises naming the line.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"split file {path} does not exist")
    samples = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 3:
            raise ValueError(f"split file {path}, line {number}: expected '<rgb> <depth> <focal>', found {line!r}")
        rgb, depth, focal = fields
        try:
            focal_px = float(focal)
        except ValueError as err:
            raise ValueError(f"split file {path}, line {number}: focal {focal!r} is not a number") from err
        samples.append(DepthSample(Path(rgb.lstrip("/")), None if depth == "None" else Path(depth.lstrip("/")),
                                   focal_px))
    return samples


def read_depth(path: str | Path, depth_scale: float) -> np.ndarray:
    """Read a single-channel uint16 depth PNG as float32 metres [H, W] (value / depth_scale; 0 = no data)."""
    raw = decode_image(path, cv2.IMREAD_UNCHANGED, "depth")
    if raw.ndim != 2 or raw.dtype != np.uint16:
        raise ValueError(f"depth file {path}: expected a single-channel 16-bit PNG, found {raw.dtype} with shape "
                         f"{list(raw.shape)}")
    return raw.astype(np.float32) / np.float32(depth_scale)


def _check_exist(paths: Sequence[Path], what: str) -> None:
    missing = [p for p in paths if not p.is_file()]
    if missing:
        shown = ", ".join(str(p) for p in missing[:5])
        raise FileNotFoundError(f"{len(missing)} of {len(paths)} {what} do not exist, e.g. {shown}")


class DepthDataset(Dataset):
    """Image + depth pairs given as ``DepthSample``s; ``transforms`` (albumentations) move both together."""

    def __init__(self, samples: Sequence[DepthSample], transforms: A.Compose | None = None,
                 depth_scale: float = 1000.0) -> None:
        if depth_scale <= 0:
            raise ValueError(f"depth_scale must be > 0, got {depth_scale}")
        self.samples = list(samples)
        self.transforms = transforms
        self.depth_scale = depth_scale
        _check_exist([s.image for s in self.samples], "image files")
        _check_exist([s.depth for s in self.samples if s.depth is not None], "depth files")

    @property
    def metainfo(self) -> dict:
        """Dataset facts saved into checkpoints."""
        return {"depth_scale": self.depth_scale}

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict:
        entry = self.samples[index]
        image = read_image(entry.image)
        h0, w0 = image.shape[:2]
        depth = read_depth(entry.depth, self.depth_scale) if entry.depth is not None else None
        if depth is not None and depth.shape != (h0, w0):
            raise ValueError(f"depth file {entry.depth} is {depth.shape[0]}x{depth.shape[1]} but image "
                             f"{entry.image} is {h0}x{w0}")
        if self.transforms is not None:
            seed_transforms(self.transforms)
            placeholder = np.zeros((h0, w0), np.float32) if depth is None else depth
            image, transformed = apply_depth_transforms(self.transforms, image, placeholder)
            depth = None if depth is None else transformed
        h, w = image.shape[:2]
        sample = {
            "img_id": index,
            "img_path": str(entry.image),
            "ori_shape": (h0, w0),
            "img_shape": (h, w),
            "scale_factor": (w / w0, h / h0),
            "focal": entry.focal,
        }
        if depth is not None:
            sample["depth_path"] = str(entry.depth)
            sample["gt_depth"] = torch.from_numpy(np.ascontiguousarray(depth, dtype=np.float32))
        return {"inputs": torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))), "data_samples": sample}


class NYUDepth(DepthDataset):
    """NYUv2 from a BTS split file (``nyu_train.txt`` / ``nyu_test.txt``) read as distributed.

    Images are found under ``data_root`` and depths under ``depth_root`` (default: ``data_root``). Entries with
    depth ``None`` have no ground truth and are skipped (``num_skipped``).
    """

    def __init__(
        self,
        data_root: str | Path,
        split_file: str | Path,
        depth_root: str | Path | None = None,
        transforms: A.Compose | None = None,
        depth_scale: float = 1000.0,
    ) -> None:
        data_root = Path(data_root)
        depth_root = Path(depth_root) if depth_root is not None else data_root
        for name, root in (("data_root", data_root), ("depth_root", depth_root)):
            if not root.is_dir():
                raise FileNotFoundError(f"NYUDepth: {name} {root} is not a directory")
        entries = parse_split_file(split_file)
        kept = [DepthSample(data_root / e.image, depth_root / e.depth, e.focal) for e in entries if e.depth]
        self.split_file = Path(split_file)
        self.num_skipped = len(entries) - len(kept)
        super().__init__(kept, transforms, depth_scale)


class DepthFolder(DepthDataset):
    """Images in ``img_dir`` paired by file stem with depth PNGs in ``depth_dir`` (e.g. a KITTI-style export)."""

    def __init__(
        self,
        img_dir: str | Path,
        depth_dir: str | Path,
        depth_scale: float = 1000.0,
        img_suffix: str = ".jpg",
        depth_suffix: str = ".png",
        transforms: A.Compose | None = None,
    ) -> None:
        img_dir, depth_dir = Path(img_dir), Path(depth_dir)
        for name, folder in (("img_dir", img_dir), ("depth_dir", depth_dir)):
            if not folder.is_dir():
                raise FileNotFoundError(f"DepthFolder: {name} {folder} is not a directory")
        images = sorted(img_dir.glob(f"*{img_suffix}"))
        if not images:
            raise FileNotFoundError(f"DepthFolder: no '*{img_suffix}' images in {img_dir}")
        samples = [DepthSample(p, depth_dir / f"{p.name.removesuffix(img_suffix)}{depth_suffix}") for p in images]
        super().__init__(samples, transforms, depth_scale)

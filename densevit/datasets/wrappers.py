"""Dataset wrappers the training loop applies from the config."""

from __future__ import annotations

import logging
from typing import Any

from torch.utils.data import Dataset

from densevit.datasets.io import CorruptImageError

__all__ = ["SkipCorrupt"]

logger = logging.getLogger(__name__)


class SkipCorrupt(Dataset):
    """Serve ``dataset``, replacing an item whose image is truncated or undecodable by the next readable one.

    Each skipped file is logged with its name and counted in ``skipped`` (per data-loader process). More than
    ``max_skips`` unreadable items in a row means the data is broken, not a few files: that raises.
    """

    def __init__(self, dataset: Any, max_skips: int = 32) -> None:
        self.dataset = dataset
        self.max_skips = max_skips
        self.skipped: list[str] = []

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        errors = []
        for step in range(self.max_skips + 1):
            try:
                return self.dataset[(index + step) % len(self.dataset)]
            except CorruptImageError as err:
                errors.append(str(err))
                self.skipped.append(str(err))
                logger.warning("skipped (on_corrupt_image='skip', %d so far): %s", len(self.skipped), err)
        raise CorruptImageError(f"{self.max_skips + 1} unreadable images in a row from item {index}: "
                                + "; ".join(errors[:3]))

    def __getattr__(self, name: str) -> Any:
        # classes, metainfo, ann_file ... are the wrapped dataset's
        if name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)

"""Where the tests find the real sample data: ``shared/data`` beside the checkout (as CI and developers have it).

``DENSEVIT_SHARED_DATA`` overrides the location.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(os.environ.get("DENSEVIT_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
COCO_PERSON_MINI = SHARED_DATA / "coco_person_mini"


def needs_sample(path: Path) -> pytest.MarkDecorator:
    """Skip (saying which file is missing) where the sample data is not beside the checkout."""
    return pytest.mark.skipif(not path.exists(), reason=f"sample data {path} not present")

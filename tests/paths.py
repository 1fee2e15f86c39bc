"""Where the tests find the real sample data: ``shared/data`` beside the checkout (as CI and developers have it).

``DENSEVIT_SHARED_DATA`` overrides the location.
"""

from __future__ import annotations

import os
from pathlib import Path

SHARED_DATA = Path(os.environ.get("DENSEVIT_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
COCO_PERSON_MINI = SHARED_DATA / "coco_person_mini"

"""COCO instances: boxes are validated and clipped when the annotations are loaded, naming what is wrong."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from densevit.datasets.coco import CocoDetection


def _annotations(tmp_path: Path, boxes: list) -> Path:
    data = {"images": [{"id": 7, "file_name": "a.jpg", "width": 100, "height": 50}],
            "categories": [{"id": 1, "name": "thing"}],
            "annotations": [{"id": 10 + i, "image_id": 7, "category_id": 1, "bbox": b, "area": 1.0, "iscrowd": 0}
                            for i, b in enumerate(boxes)]}
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(data))  # json writes NaN as NaN, as a broken exporter does
    return path


def test_a_nan_box_is_an_error_naming_the_annotation_and_image(tmp_path):
    path = _annotations(tmp_path, [[1, 2, 3, 4], [float("nan"), 2, 3, 4]])
    with pytest.raises(ValueError, match=r"instances\.json: annotation 11 of image 7 has bbox \[nan, 2, 3, 4\]"):
        CocoDetection(path, tmp_path)
    with pytest.raises(ValueError, match=r"annotation 10 of image 7 has bbox \[1, 2, 3\]"):
        CocoDetection(_annotations(tmp_path, [[1, 2, 3]]), tmp_path)


def test_boxes_are_clipped_to_the_image_and_dropped_when_nothing_is_left(tmp_path):
    path = _annotations(tmp_path, [[-10, -5, 30, 20], [90, 40, 50, 50], [120, 10, 5, 5]])
    data = CocoDetection(path, tmp_path, train=True)
    assert [a["bbox"] for a in data.anns[7]] == [[0.0, 0.0, 20.0, 15.0], [90.0, 40.0, 10.0, 10.0]]

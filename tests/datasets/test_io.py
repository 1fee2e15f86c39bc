"""Reading images: truncated files are caught and named; training stops on them or skips them, as configured."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from mmengine.config import Config

from densevit.datasets.io import CorruptImageError, ImageReader, read_coco_results, read_image
from densevit.datasets.wrappers import SkipCorrupt
from densevit.engine.runner import build_runner


def _image(path: Path) -> Path:
    rng = np.random.default_rng(0)
    cv2.imwrite(str(path), rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    return path


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_a_truncated_image_is_an_error_naming_the_file(tmp_path, suffix):
    whole = _image(tmp_path / f"whole{suffix}")
    assert read_image(whole).shape == (48, 64, 3)
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(whole.read_bytes()[: len(whole.read_bytes()) * 2 // 3])
    with pytest.raises(CorruptImageError, match=rf"cut\{suffix} is truncated"):
        read_image(cut)


def test_bytes_after_the_end_marker_are_fine(tmp_path):
    jpeg = _image(tmp_path / "a.jpg")
    with_trailer = tmp_path / "trailer.jpg"
    with_trailer.write_bytes(jpeg.read_bytes() + b"camera trailer" * 10)
    np.testing.assert_array_equal(read_image(with_trailer), read_image(jpeg))


class Images:
    classes = ("x",)

    def __init__(self, files: list[Path]) -> None:
        self.files = files

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> np.ndarray:
        return read_image(self.files[i])


def test_skip_corrupt_serves_the_next_readable_item_and_counts(tmp_path):
    files = [_image(tmp_path / f"{i}.jpg") for i in range(3)]
    files[1].write_bytes(files[1].read_bytes()[:100])
    data = SkipCorrupt(Images(files))
    np.testing.assert_array_equal(data[1], read_image(files[2]))
    assert len(data) == 3 and data.classes == ("x",) and len(data.skipped) == 1 and "1.jpg" in data.skipped[0]
    for f in files:
        f.write_bytes(b"\xff\xd8 nothing")
    with pytest.raises(CorruptImageError, match="unreadable images in a row"):
        SkipCorrupt(data.dataset, max_skips=2)[0]


def test_training_skips_corrupt_images_only_when_asked(tiny_config, tmp_path):
    runner = build_runner(Config(tiny_config(on_corrupt_image="skip")), work_dir=tmp_path / "skip")
    assert isinstance(runner.train_dataloader.dataset.dataset, SkipCorrupt)  # inside the stream's PositionSeeded
    runner = build_runner(Config(tiny_config()), work_dir=tmp_path / "stop")
    assert not isinstance(runner.train_dataloader.dataset.dataset, SkipCorrupt)
    with pytest.raises(ValueError, match="on_corrupt_image='ignore'"):
        build_runner(Config(tiny_config(on_corrupt_image="ignore")), work_dir=tmp_path / "bad")


def test_image_reader_cache_decodes_once_and_hands_out_read_only_images(tmp_path):
    path = _image(tmp_path / "a.png")
    cached, plain = ImageReader(cache=True), ImageReader()
    first = cached(path)
    np.testing.assert_array_equal(first, read_image(path))
    path.unlink()  # a second read must come from memory
    assert cached(path) is first
    with pytest.raises(ValueError, match="read-only"):
        first[0, 0, 0] = 1  # a pipeline changing a cached image in place would corrupt every later sample
    with pytest.raises(FileNotFoundError):
        plain(path)


def test_a_coco_result_file_of_another_shape_is_named(tmp_path):
    """One reader for box files (tools/infer.py --bbox-file, CocoKeypoints' bbox_file): the file and the first entry
    without a key are named."""
    path = tmp_path / "dets.json"
    path.write_text(json.dumps([{"image_id": 1, "bbox": [0, 0, 4, 4], "score": 0.5}, {"image_id": 2, "bbox": []}]))
    with pytest.raises(ValueError, match=r"box file .*dets\.json: entry 1 lacks \['score'\]"):
        read_coco_results(path, ("image_id", "bbox", "score"))
    path.write_text(json.dumps({"annotations": []}))
    with pytest.raises(ValueError, match=r"dets\.json: expected a COCO result list, found dict"):
        read_coco_results(path, ("image_id",))
    path.write_text(json.dumps([{"image_id": 1, "bbox": [0, 0, 4, 4], "score": 0.5}]))
    assert read_coco_results(path, ("image_id", "bbox", "score"))[0]["score"] == 0.5

"""tools/browse_dataset.py on every quickstart's training pipeline over tiny demo data: one picture per item."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from densevit.datasets.demo import generate_demo_dataset

pytestmark = [pytest.mark.usefixtures("one_thread"),
              pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")]

QUICKSTART = Path(__file__).resolve().parents[2] / "configs" / "quickstart"


@pytest.fixture(scope="module")
def demo_cwd(tmp_path_factory) -> Path:
    """A folder holding data/demo with every demo task, where the quickstart configs find it."""
    cwd = tmp_path_factory.mktemp("browse")
    generate_demo_dataset(cwd / "data" / "demo", num_train=2, num_val=1, image_size=128,
                          tasks=("instances", "semantic", "depth", "pose", "restoration"), progress=False)
    return cwd


@pytest.mark.parametrize("config, split", [
    ("mask_rcnn_vit_tiny_demo.py", "train"),  # boxes, names, masks
    ("upernet_vit_tiny_demo.py", "train"),  # label map and legend
    ("dpt_vit_tiny_demo.py", "val"),  # depth beside the image
    ("topdown_pose_hybrid_vit_tiny_demo.py", "train"),  # skeleton on the crop
    ("restoration_hybrid_vit_tiny_demo.py", "train"),  # degraded crop beside its ground truth
])
def test_draws_the_items_as_the_model_sees_them(tool, demo_cwd, monkeypatch, tmp_path, capsys, config, split):
    monkeypatch.chdir(demo_cwd)
    out = tmp_path / "pictures"
    tool("browse_dataset.py", QUICKSTART / config, "--split", split, "--num", 2, "--out-dir", out)
    pictures = sorted(out.glob("*.png"))
    assert len(pictures) == (1 if split == "val" else 2), pictures  # the demo has 1 val and 2 train images
    for path in pictures:
        picture = cv2.imread(str(path))
        assert picture is not None and picture.std() > 0
    assert "samples of" in capsys.readouterr().out


def test_pictures_carry_the_targets(tool, demo_cwd, monkeypatch, tmp_path):
    """The drawn item differs from the bare image: boxes and masks were drawn over it."""
    monkeypatch.chdir(demo_cwd)
    tool("browse_dataset.py", QUICKSTART / "mask_rcnn_vit_tiny_demo.py", "--split", "val", "--num", 1,
         "--out-dir", tmp_path)
    (path,) = tmp_path.glob("*.png")
    image = cv2.imread(str(demo_cwd / "data" / "demo" / "val" / f"{path.stem.split('_', 1)[1]}.jpg"))
    picture = cv2.imread(str(path))
    assert picture.shape[:2] == (256, 256)  # the val pipeline resizes the 128 px image to the model's 256
    small = cv2.resize(picture, image.shape[1::-1], interpolation=cv2.INTER_AREA)
    assert np.abs(small.astype(int) - image.astype(int)).mean() > 2

"""The own-data configs of docs/own_data.md train and evaluate on data in their documented layouts.

The demo generator writes each layout (a COCO-format set, images + label PNGs, images + depth PNGs); each config's
dataset paths are pointed at it and a two-iteration run, then the test loop, must go through.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from densevit.config import load_config
from densevit.datasets.demo import generate_demo_dataset
from densevit.engine.runner import build_runner

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "own_data"
pytestmark = [pytest.mark.usefixtures("one_thread"),
              pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")]


@pytest.fixture(scope="module")
def own_data(tmp_path_factory) -> Path:
    return generate_demo_dataset(tmp_path_factory.mktemp("own") / "set", num_train=4, num_val=2, image_size=64,
                                 tasks=("instances", "semantic", "depth"), progress=False)


def _paths(name: str, root: Path) -> dict[str, str]:
    """Where each config's files are in the generated set (what a user writes into data_root)."""
    if name == "mask_rcnn_coco_format":
        return {"train_dataloader.dataset.ann_file": f"{root}/annotations/instances_train.json",
                "train_dataloader.dataset.img_dir": f"{root}/train",
                "val_dataloader.dataset.ann_file": f"{root}/annotations/instances_val.json",
                "val_dataloader.dataset.img_dir": f"{root}/val",
                "val_evaluator.ann_file": f"{root}/annotations/instances_val.json",
                "model.num_classes": 5, "model.box_predictor_module.num_classes": 5,
                "model.mask_predictor_module.num_classes": 5}
    if name == "upernet_label_folder":
        return {f"{loader}_dataloader.dataset.{key}": f"{root}/{folder}/{split}"
                for loader, split in (("train", "train"), ("val", "val"))
                for key, folder in (("img_dir", "."), ("ann_dir", "semantic"))}
    return {f"{loader}_dataloader.dataset.{key}": f"{root}/{folder}/{split}"
            for loader, split in (("train", "train"), ("val", "val"))
            for key, folder in (("img_dir", "."), ("depth_dir", "depth"))}


@pytest.mark.parametrize("name", ["mask_rcnn_coco_format", "upernet_label_folder", "dpt_depth_folder"])
def test_own_data_config_trains_and_tests(name, own_data, tmp_path):
    options = {"train_cfg.max_iters": 2, "train_dataloader.batch_size": 2, "train_dataloader.num_workers": 0,
               "train_dataloader.persistent_workers": False, "val_dataloader.num_workers": 0,
               **_paths(name, own_data)}
    if name == "upernet_label_folder":  # the demo's 6 label values
        classes = ["background", "ellipse", "rectangle", "triangle", "star", "ring"]
        options.update({"train_dataloader.dataset.classes": classes, "val_dataloader.dataset.classes": classes,
                        "val_evaluator.class_names": classes, "model.decode_head.num_classes": 6,
                        "model.aux_head.num_classes": 6})
    cfg = load_config(CONFIGS / f"{name}.py", options)
    cfg.test_dataloader, cfg.test_evaluator = cfg.val_dataloader, cfg.val_evaluator
    build_runner(cfg, work_dir=tmp_path / "train").train()
    metrics = build_runner(cfg, work_dir=tmp_path / "test", load_from=str(tmp_path / "train" / "iter_2.pth"),
                           train=False).test()
    assert metrics and all(isinstance(v, float) for v in metrics.values())

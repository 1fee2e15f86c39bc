"""tools/export.py: a tiny model of every task (ViT-CoMer's deformable attention and STViT-R included) exported to
ONNX, run by onnxruntime on a demo image and matched to PyTorch within 1e-4; torch.export where it works."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import DefaultSampler

from densevit.adapters.fpn import FPN
from densevit.adapters.simple_pyramid import SimpleFeaturePyramid
from densevit.adapters.stvit_r import STViTR
from densevit.adapters.vit_comer import ViTCoMer
from densevit.backbones.vit import ViT
from densevit.backbones.vitpose import ViTPoseBackbone
from densevit.config import build, to_dotted
from densevit.datasets.ade20k import SegFolderDataset
from densevit.datasets.coco_keypoints import CocoKeypoints
from densevit.datasets.demo import generate_demo_dataset
from densevit.datasets.keypoint_info import COCO_KEYPOINTS
from densevit.datasets.nyu import NYUDepth
from densevit.datasets.restoration import PairedImageDataset
from densevit.engine.data import DataPreprocessor
from densevit.heads.pose import SimplePoseHead
from densevit.heads.uper import UPerHead
from densevit.models.depth import DepthEstimator
from densevit.models.pose import TopDownPose
from densevit.models.restoration import ImageRestorer
from densevit.models.segmentor import Segmentor

pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.filterwarnings("ignore")]

SIZE = 64
VIT = dict(type=ViT, img_size=SIZE, embed_dim=64, depth=2, num_heads=2)


@pytest.fixture(scope="module")
def dense_root(tmp_path_factory) -> Path:
    """Two 64x64 demo scenes with label maps, depth and degraded copies."""
    return generate_demo_dataset(tmp_path_factory.mktemp("data") / "demo", num_train=1, num_val=2, image_size=SIZE,
                                 tasks=("semantic", "depth", "restoration", "pose"), progress=False)


def loader(dataset: dict) -> dict:
    return dict(batch_size=1, num_workers=0, sampler=dict(type=DefaultSampler, shuffle=False), dataset=dataset)


def detection(tiny_config, backbone: dict | None = None) -> dict:
    cfg = tiny_config()
    if backbone is not None:
        cfg["model"]["backbone"] = backbone
    return {k: cfg[k] for k in ("model", "data_preprocessor", "test_dataloader")}


def segmentation(root: Path) -> dict:
    pyramid = dict(type=SimpleFeaturePyramid, backbone=VIT, out_channels=32, top_block=False)
    return dict(
        model=dict(type=Segmentor, backbone=pyramid, decode_head=dict(type=UPerHead, in_channels=(32,) * 4,
                                                                      num_classes=6, channels=32)),
        data_preprocessor=dict(type=DataPreprocessor, size_divisor=32),
        test_dataloader=loader(dict(type=SegFolderDataset, img_dir=f"{root}/val", ann_dir=f"{root}/semantic/val",
                                      classes=tuple("abcdef"))),
    )


def depth(root: Path) -> dict:
    return dict(
        model=dict(type=DepthEstimator, backbone={**VIT, "depth": 4, "out_indices": (0, 1, 2, 3)},
                   reassemble_channels=(8, 16, 32, 64), features=16, max_depth=15.0),
        data_preprocessor=dict(type=DataPreprocessor, size_divisor=32),
        test_dataloader=loader(dict(type=NYUDepth, data_root=str(root), split_file=f"{root}/depth/val.txt")),
    )


def restoration(root: Path) -> dict:
    return dict(
        model=dict(type=ImageRestorer, backbone={**VIT, "out_indices": (0, 1)}, channels=16, shallow_blocks=1,
                   fuse_blocks=1),
        data_preprocessor=dict(type=DataPreprocessor, size_divisor=1),
        test_dataloader=loader(dict(type=PairedImageDataset, gt_dir=f"{root}/restoration/val/gt",
                                      lq_dir=f"{root}/restoration/val/lq")),
    )


def pose(root: Path) -> dict:
    keypoints = COCO_KEYPOINTS
    return dict(
        model=dict(type=TopDownPose, backbone=dict(type=ViTPoseBackbone, img_size=(64, 48), embed_dim=64, depth=2,
                                                   num_heads=2),
                   head=dict(type=SimplePoseHead, in_channels=64, num_keypoints=keypoints.num_keypoints),
                   num_keypoints=keypoints.num_keypoints, flip_pairs=keypoints.flip_pairs),
        data_preprocessor=dict(type=DataPreprocessor, size_divisor=1),
        test_dataloader=loader(dict(type=CocoKeypoints, ann_file=f"{root}/annotations/person_keypoints_val.json",
                                    img_dir=f"{root}/pose/val", input_size=(64, 48))),
    )


VIT_COMER = dict(type=FPN, out_channels=32, extra_pool=True, backbone=dict(
    type=ViTCoMer, backbone={**VIT, "layer_scale_init": 1.0}, interaction_indexes=((0, 0), (1, 1)), conv_inplane=16,
    deform_num_heads=2, vit_feature="final"))
STVIT_R = dict(type=SimpleFeaturePyramid, out_channels=32, scale_factors=(4.0, 2.0, 1.0, 0.5), backbone=dict(
    type=STViTR, vit={**VIT, "depth": 4}, roles=("image", "init", "global", "recover"), window=2, pooled=1,
    init_kernel=4, recover_kernel=3))

TASK_CONFIGS = {
    "mask_rcnn": lambda tiny_config, root: detection(tiny_config),
    "mask_rcnn_vit_comer": lambda tiny_config, root: detection(tiny_config, VIT_COMER),
    "mask_rcnn_stvit_r": lambda tiny_config, root: detection(tiny_config, STVIT_R),
    "segmentor": lambda tiny_config, root: segmentation(root),
    "depth": lambda tiny_config, root: depth(root),
    "restoration": lambda tiny_config, root: restoration(root),
    "pose": lambda tiny_config, root: pose(root),
}


def config_and_weights(name: str, tiny_config, root: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A config file of the named tiny model and a checkpoint of its (random) weights."""
    cfg = TASK_CONFIGS[name](tiny_config, root)
    torch.manual_seed(0)
    model = build(cfg["model"], "model")
    for p in model.parameters():  # zero-initialised layers (e.g. restoration's last conv) would hide differences
        p.data.add_(torch.randn_like(p), alpha=0.02)
    weights = tmp_path / f"{name}.pth"
    torch.save({"state_dict": model.state_dict()}, weights)
    config = tmp_path / f"{name}.py"
    Config(to_dotted(cfg)).dump(str(config))
    return config, weights


def differences(text: str) -> list[float]:
    return [float(v) for v in re.findall(r"relative (\S+) \(within", text)]


@pytest.mark.parametrize("name", list(TASK_CONFIGS))
def test_onnx_export_matches_pytorch(name, tool, tiny_config, dense_root, tmp_path, capsys):
    config, weights = config_and_weights(name, tiny_config, dense_root, tmp_path)
    out = tmp_path / f"{name}.onnx"
    tool("export.py", config, weights, "--out", out, "--dynamic")
    text = capsys.readouterr().out
    found = differences(text)
    assert len(found) == 2 and max(found) <= 1e-4, text  # batch 1 and, through the free batch size, batch 3
    print(f"{name}: largest relative difference {max(found):.3g}")
    assert out.is_file() and not out.with_name(out.name + ".data").exists()  # one self-contained file


def test_pt2_export_and_free_image_size(tool, tiny_config, dense_root, tmp_path, capsys):
    config, weights = config_and_weights("mask_rcnn", tiny_config, dense_root, tmp_path)
    # exported at a size other than the ViT's 64 px, its position-table resizing is in the graph: sizes stay free
    tool("export.py", config, weights, "--format", "pt2", "--shape", 96, 128, "--dynamic-size",
         "--out", tmp_path / "model.pt2")
    text = capsys.readouterr().out
    assert "[1, 3, 96, 128]" in text and "[1, 3, 128, 192]" in text
    assert len(differences(text)) == 2 and max(differences(text)) <= 1e-4, text


def test_pt2_export_of_stvit_r_with_padded_windows(tool, tiny_config, dense_root, tmp_path, capsys):
    """80 px: a 5x5 token grid in 2x2 windows is padded, so STViT-R builds (and caches) its region masks."""
    config, weights = config_and_weights("mask_rcnn_stvit_r", tiny_config, dense_root, tmp_path)
    tool("export.py", config, weights, "--format", "pt2", "--shape", 80, 80, "--dynamic", "--out", tmp_path / "m.pt2")
    text = capsys.readouterr().out
    assert len(differences(text)) == 2 and max(differences(text)) <= 1e-4, text


def test_a_graph_that_bakes_its_size_in_fails_the_check(tool, tiny_config, dense_root, tmp_path, capsys):
    config, weights = config_and_weights("mask_rcnn", tiny_config, dense_root, tmp_path)
    # at the ViT's own 64 px no position-table resizing is traced, so another size cannot run
    with pytest.raises(SystemExit, match="does not support other input shapes"):
        tool("export.py", config, weights, "--format", "pt2", "--dynamic-size", "--out", tmp_path / "model.pt2")
    assert "the exported file fails" in capsys.readouterr().out

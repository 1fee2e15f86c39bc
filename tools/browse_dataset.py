"""Draw dataset samples as the model sees them: after the split's pipeline (augmentation included), with targets.

    python tools/browse_dataset.py CONFIG [--split train|val|test] [--num 10] --out-dir DIR [--cfg-options ...]

Writes ``DIR/<index>_<image name>.png`` for the first ``--num`` items of the split's dataset (the training set by
default, so the pictures show the training augmentation: run it twice to see other random draws). Each picture
shows what the item holds: instance boxes, class names and masks (``boxes`` / ``labels`` / ``masks``); the label
map over the image (``gt_sem_seg``, with a legend); the depth map beside the image (``gt_depth``, 0 = no depth);
the keypoints of a top-down crop (``keypoints`` / ``keypoints_visible``, with the dataset's skeleton); the
degraded input beside its ground truth (``gt``). Drawing uses ``densevit.vis``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from mmengine.config import DictAction

if TYPE_CHECKING:
    import numpy as np
    import torch


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config")
    parser.add_argument("--split", choices=("train", "val", "test"), default="train")
    parser.add_argument("--num", type=int, default=10, help="how many items, from the first")
    parser.add_argument("--out-dir", type=Path, required=True)
    parser.add_argument("--cfg-options", nargs="+", action=DictAction, help="override config keys: key=value")
    return parser.parse_args()


def numpy(x: torch.Tensor | np.ndarray) -> np.ndarray:
    import numpy as np
    import torch

    return x.numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def draw_item(image: np.ndarray, sample: dict, dataset) -> np.ndarray:
    """image: RGB uint8 [H, W, 3] as the model gets it; sample: its targets -> one RGB picture."""
    import numpy as np

    from densevit.vis.canvas import side_by_side
    from densevit.vis.depth import draw_depth
    from densevit.vis.detection import draw_detections
    from densevit.vis.pose import draw_poses
    from densevit.vis.segmentation import draw_segmentation

    classes = dataset.metainfo.get("classes", ()) if hasattr(dataset, "metainfo") else ()
    panels = []
    picture = image
    if "boxes" in sample:
        boxes = numpy(sample["boxes"]).reshape(-1, 4)
        masks = numpy(sample["masks"]) if "masks" in sample else None
        picture = draw_detections(picture, boxes, numpy(sample["labels"]), np.ones(len(boxes)), classes, masks, 0.0)
    if "keypoints" in sample:
        info = dataset.keypoint_info
        visible = numpy(sample["keypoints_visible"]).reshape(1, -1)
        picture = draw_poses(picture, numpy(sample["keypoints"])[None], visible, info.skeleton, info.sides,
                             keypoint_thr=0.5)
    if "gt_sem_seg" in sample:
        picture = draw_segmentation(picture, sample["gt_sem_seg"], classes)
    panels.append(picture)
    if "gt_depth" in sample:
        depth = numpy(sample["gt_depth"])
        valid = depth[depth > 0]
        panels.append(draw_depth(depth, float(valid.min()) if valid.size else 0.0,
                                 float(valid.max()) if valid.size else 1.0))
    if "gt" in sample:
        panels.append(numpy(sample["gt"]).transpose(1, 2, 0))
    return side_by_side(*panels)


def main() -> None:
    args = parse_args()
    # imported after parsing, so that --help answers at once
    import cv2
    import numpy as np
    from tqdm import tqdm

    from densevit.config import build, load_config, to_plain

    cfg = load_config(args.config, args.cfg_options)
    key = f"{args.split}_dataloader"
    if key not in cfg:
        raise SystemExit(f"{args.config} has no {key}; it has {sorted(k for k in cfg if k.endswith('_dataloader'))}")
    dataset = build(to_plain(cfg[key]["dataset"]), f"{key}.dataset")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    count = min(args.num, len(dataset))
    for index in tqdm(range(count), desc=f"{args.split} samples", unit="img"):
        item = dataset[index]
        # float inputs: a restoration set's synthetic degradation, unquantised 0-255 values
        image = np.clip(numpy(item["inputs"]).transpose(1, 2, 0), 0, 255).astype(np.uint8)
        sample = item["data_samples"]
        name = Path(str(sample.get("img_path") or index)).stem
        picture = draw_item(image, sample, dataset)
        cv2.imwrite(str(args.out_dir / f"{index:05d}_{name}.png"), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
    print(f"{count} {args.split} samples of {type(dataset).__name__} drawn in {args.out_dir}")


if __name__ == "__main__":
    main()

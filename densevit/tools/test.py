"""Evaluate a checkpoint: densevit-test (or python tools/test.py) CONFIG CHECKPOINT [--work-dir DIR]; writes
metrics.json.

--out saves the raw predictions the evaluator scored, in the task's standard format: detection a COCO result JSON
(boxes and RLE masks), pose a COCO keypoint result JSON (after OKS-NMS); segmentation <image>_labels.png (class
indices), depth <image>_depth16.png (uint16 millimetres), restoration <image>_restored.png, in a folder.
--show-dir draws the prediction beside the ground truth (the same drawing) for the first --show-num images.
--tta / --no-tta switch the model's test-time augmentation on or off (default: as the config says):
segmentation adds mirrored views to the config's tta_scales and averages their softmax; depth averages with the
mirrored image; pose averages the mirrored crop's heatmaps (ViTPose's default, on unless --no-tta).
A segmentation test also writes confusion_matrix.png / .csv (per ground-truth class, rows sum to 1) and the
per-class IoU / Acc as per_class.csv and per_class.md to the work dir.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from mmengine.config import DictAction


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", help="config file the checkpoint was trained with")
    parser.add_argument("checkpoint", help="checkpoint file (.pth)")
    parser.add_argument("--work-dir", help="where metrics.json and logs go (default: work_dirs/<config name>/test)")
    parser.add_argument("--out", help="save the predictions: a .json file (detection, pose) or a folder (others)")
    parser.add_argument("--show-dir", help="folder for pictures of predictions beside the ground truth")
    parser.add_argument("--show-num", type=int, default=20, help="how many images --show-dir draws, from the first")
    parser.add_argument("--score-thr", type=float, help="detection --show-dir: lowest score drawn (default 0.3)")
    parser.add_argument("--tta", action=argparse.BooleanOptionalAction,
                        help="test-time augmentation on (--tta) or off (--no-tta); default: the config's")
    parser.add_argument("--cfg-options", nargs="+", action=DictAction, help="override config keys: key=value")
    parser.add_argument("--launcher", choices=["none", "pytorch", "slurm"], default="none")
    parser.add_argument("--local-rank", "--local_rank", type=int, default=0)
    args = parser.parse_args(argv)
    if args.show_num < 1:
        parser.error(f"--show-num {args.show_num}: draw at least one image")
    if args.show_dir is None and args.score_thr is not None:
        parser.error("--score-thr sets what --show-dir draws; give --show-dir too")
    return args


def main(argv: list[str] | None = None) -> None:
    """The ``densevit-test`` command: ``argv`` (default: the command line) as above."""
    args = parse_args(argv)
    # imported after parsing, so that --help answers at once (torch alone takes seconds to import)
    import numpy as np
    import torch
    from mmengine.dist import all_reduce
    from mmengine.model import is_model_wrapper

    from densevit.apis import task_of
    from densevit.config import load_config
    from densevit.datasets.io import read_image
    from densevit.engine.metric import SampleHook
    from densevit.engine.runner import build_runner
    from densevit.evaluation.segmentation import confusion_matrix
    from densevit.models.base import SupportsTTA
    from densevit.models.mask_rcnn import MaskRCNN
    from densevit.models.segmentor import Segmentor
    from densevit.vis.canvas import png_bytes, side_by_side

    if not Path(args.checkpoint).is_file():
        raise SystemExit(f"checkpoint {args.checkpoint} does not exist")
    cfg = load_config(args.config, args.cfg_options)
    work_dir = Path(args.work_dir or Path("work_dirs") / Path(args.config).stem / "test")
    runner = build_runner(cfg, work_dir=work_dir, load_from=args.checkpoint, launcher=args.launcher, train=False)
    model = runner.model.module if is_model_wrapper(runner.model) else runner.model
    task, name = task_of(model), type(model.model).__name__
    loop = runner.test_loop  # builds the test loader and evaluator, so the options are checked before any work
    dataset, evaluator = loop.dataloader.dataset, loop.evaluator.metrics[0].evaluator
    model.class_names = tuple(getattr(dataset, "classes", ()))  # the pictures name the classes

    # every option is checked against the config's task before the checkpoint is read
    if args.tta is not None and not isinstance(model.model, SupportsTTA):
        raise SystemExit(f"--tta / --no-tta: {name} has no test-time augmentation (segmentation, depth and pose "
                         "models have)")
    if args.out and task.files is None and not args.out.endswith(".json"):
        raise SystemExit(f"--out {args.out}: {name} predictions are saved as one COCO result file; give a .json path")
    if args.out and task.files is None and not hasattr(evaluator, "outfile"):
        raise SystemExit(f"--out: the test evaluator {type(evaluator).__name__} cannot save COCO results")
    if args.out and task.files is not None and args.out.endswith(".json"):
        raise SystemExit(f"--out {args.out}: {name} predictions are saved as pictures, one per image; give a folder")
    if args.show_dir and task.truth is None:
        raise SystemExit(f"--show-dir: {name} predicts per person crop, not per image; draw whole images with "
                         "tools/infer.py")
    if args.score_thr is not None and not isinstance(model.model, MaskRCNN):
        raise SystemExit(f"--score-thr: {name} draws no scored detections")

    if args.tta is not None:
        print(f"test-time augmentation {'on' if args.tta else 'off'}: {model.model.set_tta(args.tta)}")
    hooks = []
    if args.out and task.files is None:
        evaluator.outfile = Path(args.out)
    elif args.out:
        def save(sample: dict) -> None:
            folder = Path(args.out) / str(sample.get("set_name", ""))  # restoration sets may share file names
            folder.mkdir(parents=True, exist_ok=True)
            for suffix, picture in task.files(model, sample).items():
                (folder / f"{Path(sample['img_path']).stem}{suffix}.png").write_bytes(png_bytes(picture))

        hooks.append(SampleHook(save))
    if args.show_dir:
        Path(args.show_dir).mkdir(parents=True, exist_ok=True)
        shown: list[str] = []  # per process: each draws its first --show-num images

        def show(sample: dict) -> None:
            if len(shown) >= args.show_num:
                return
            image, thr = read_image(sample["img_path"]), 0.3 if args.score_thr is None else args.score_thr
            truth = {**sample, **task.truth(sample, dataset)}
            panels = [next(iter(task.pictures(model, image, s, t).values())) for s, t in ((sample, thr), (truth, 0.0))]
            shown.append("_".join(filter(None, (str(sample.get("set_name", "")), Path(sample["img_path"]).stem))))
            picture = side_by_side(*panels, titles=("prediction", "ground truth"), gap=8)
            (Path(args.show_dir) / f"{shown[-1]}.png").write_bytes(png_bytes(picture))

        hooks.append(SampleHook(show))
    if isinstance(model.model, Segmentor):
        confusion = np.zeros((model.model.num_classes,) * 2, np.int64)

        def count(sample: dict) -> None:
            confusion[...] += confusion_matrix(sample["sem_seg"], sample["gt_sem_seg"], len(confusion),
                                               evaluator.ignore_index)

        hooks.append(SampleHook(count))
    loop.evaluator.metrics += hooks
    metrics = runner.test()
    if isinstance(model.model, Segmentor):
        all_reduce(torch.from_numpy(confusion))  # in place: summed over the processes
    if runner.rank != 0:
        return
    out = work_dir / "metrics.json"
    # JSON has no NaN: a metric without data (e.g. APl when no object is large) is written as null; text (the
    # restoration evaluator's scoring convention) is kept as it is
    values = {k: v if isinstance(v, str) else float(v) if math.isfinite(float(v)) else None
              for k, v in metrics.items()}
    out.write_text(json.dumps(values, indent=2, allow_nan=False))
    print(f"metrics written to {out}")
    if isinstance(model.model, Segmentor):
        write_segmentation_report(work_dir, confusion, evaluator.class_names)
    if args.out and task.files is not None:
        print(f"predictions written to {args.out}")
    if args.show_dir:
        print(f"pictures of {len(shown)} images (prediction | ground truth) written to {args.show_dir}")


def write_segmentation_report(work_dir: Path, confusion, class_names: tuple[str, ...]) -> None:
    """confusion_matrix.png / .csv (rows: ground truth, normalised) and per_class.csv / .md (IoU, Acc in percent)."""
    import csv

    from densevit.evaluation.segmentation import class_table, confusion_histograms, segmentation_metrics
    from densevit.vis.segmentation import plot_confusion_matrix, row_normalised

    plot_confusion_matrix(confusion, class_names, work_dir / "confusion_matrix.png")
    with open(work_dir / "confusion_matrix.csv", "w", newline="") as f:
        rows = [["ground truth \\ prediction", *class_names]]
        rows += [[n, *(f"{v:.6f}" if math.isfinite(v) else "" for v in row)]
                 for n, row in zip(class_names, row_normalised(confusion), strict=True)]
        csv.writer(f).writerows(rows)
    metrics = segmentation_metrics(confusion_histograms(confusion))
    (work_dir / "per_class.csv").write_text(class_table(class_names, metrics))
    (work_dir / "per_class.md").write_text(class_table(class_names, metrics, markdown=True) + "\n")
    print(f"confusion matrix and per-class IoU / Acc written to {work_dir} (confusion_matrix.png, per_class.md)")


if __name__ == "__main__":
    main()

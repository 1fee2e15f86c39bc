"""Run a model on images or a video: densevit-infer (or python tools/infer.py) CONFIG CHECKPOINT INPUT --out-dir DIR.

INPUT is an image, a folder of images, a video file (.mp4 .avi .mov .mkv .webm .m4v .mpg .mpeg .wmv .flv; --video
reads a file of any other suffix as one) or, with --video, a folder of frames (in name order, numbers by value:
frame_2 before frame_10).

Images: pictures per image and all predictions in one predictions.json, by task:
detection ``<stem>.png`` (boxes, masks, names, scores) and COCO result records;
segmentation ``<stem>_overlay.png`` (with a legend) and ``<stem>_labels.png`` (class indices), a record per image;
depth ``<stem>_depth.png`` (with a colour bar) and ``<stem>_depth16.png`` (uint16 millimetres), a record per image;
restoration ``<stem>_restored.png`` (full resolution) and ``<stem>_compare.png`` (input | restored, zoomed crops),
a record per image; ``--tile 512`` restores overlapping tiles (memory stays flat on photos of any size).
pose ``<stem>.png`` (skeletons: joints and limbs coloured by side, scores) and one COCO keypoint result per person.

A top-down pose model needs person boxes: from a densevit detector (``--det-config`` / ``--det-checkpoint``, its
``--det-class`` detections), from a COCO-format box file (``--bbox-file``: image ids from ``--ann-file``'s
images, else the file stems' numbers, as COCO names its images), or, without either, the whole image as one person.

Video: ``<name>.mp4`` (mp4v, at the input's frames per second; a folder of frames at --fps, 30 by default), each
frame drawn as its task draws it (detection and pose as their pictures, segmentation without the legend, depth with
its colour bar, restoration input | restored), and ``<name>.jsonl``, one line per frame:
{"frame": index, "time": seconds, "records": [that frame's records, as predictions.json holds them]}. The end
says the frames per second of inference. A pose model's people come from --det-config per frame, or the whole frame.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from mmengine.config import DictAction
from tqdm import tqdm

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv"}
FRAMES_FPS = 30.0  # a folder of frames carries no rate; also the fallback for a video that reports none
MAX_UNREADABLE_FRAMES = 10  # frames in a row a video may fail to decode before it counts as ended


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config")
    parser.add_argument("checkpoint")
    parser.add_argument("input", help="an image, a folder of images, a video file, or (--video) a folder of frames")
    parser.add_argument("--out-dir", required=True, help="where pictures and predictions.json (or the video) go")
    parser.add_argument("--video", action="store_true",
                        help="read INPUT as a video: a folder of frames, or a file whatever its suffix")
    parser.add_argument("--fps", type=float, help="frames per second of the video written (default: the input "
                        f"video's; {FRAMES_FPS:g} for a folder of frames)")
    parser.add_argument("--score-thr", type=float, default=0.3, help="lowest detection score drawn (all are saved)")
    parser.add_argument("--cfg-options", nargs="+", action=DictAction, help="override config keys: key=value")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--tile", type=int, help="restoration: tile side in input pixels (default: whole images)")
    parser.add_argument("--tile-overlap", type=int, default=32, help="restoration: overlap of neighbouring tiles")
    people = parser.add_argument_group("person boxes for a top-down pose model (default: the whole image)")
    people.add_argument("--det-config", help="a densevit detector's config")
    people.add_argument("--det-checkpoint", help="its checkpoint")
    people.add_argument("--det-class", default="person", help="the detector class taken as people")
    people.add_argument("--det-score-thr", type=float, default=0.3, help="lowest box score kept (detector or file)")
    people.add_argument("--bbox-file", help="person boxes in COCO result format (image_id, bbox, score)")
    people.add_argument("--ann-file", help="COCO annotation file whose images give --bbox-file's image ids")
    args = parser.parse_args(argv)
    if (args.det_config is None) != (args.det_checkpoint is None):
        parser.error("--det-config and --det-checkpoint go together")
    if args.det_config and args.bbox_file:
        parser.error("give person boxes from a detector or from --bbox-file, not both")
    args.video = args.video or Path(args.input).suffix.lower() in VIDEO_SUFFIXES
    if args.video and (args.bbox_file or args.ann_file):
        parser.error("--bbox-file / --ann-file give boxes per image file; for a video use --det-config / "
                     "--det-checkpoint, or neither (the whole frame as one person)")
    if args.fps is not None and args.fps <= 0:
        parser.error(f"--fps must be positive, got {args.fps}")
    return args


def load_box_file(path: Path, score_thr: float) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """COCO-format boxes per image id: (boxes [N, 4] xywh, scores [N]) of the entries scoring at least score_thr."""
    from densevit.datasets.io import read_coco_results

    try:
        entries = read_coco_results(path, ("image_id", "bbox", "score"))
    except (OSError, ValueError) as err:
        raise SystemExit(f"--bbox-file: {err}") from err
    per_image: dict[int, list[dict]] = {}
    for entry in entries:
        if entry["score"] >= score_thr:
            per_image.setdefault(int(entry["image_id"]), []).append(entry)
    return {img_id: (np.array([e["bbox"][:4] for e in kept], np.float64), np.array([e["score"] for e in kept]))
            for img_id, kept in per_image.items()}


def image_ids(paths: list[Path], ann_file: str | None, bbox_file: str | None) -> list[int]:
    """Each image's id: from the annotation file's images (by file name), else its stem's number, else its index."""
    if ann_file:
        images = json.loads(Path(ann_file).read_text()).get("images", [])
        by_name = {im["file_name"]: im["id"] for im in images}
        missing = [p.name for p in paths if p.name not in by_name]
        if missing:
            raise SystemExit(f"--ann-file {ann_file}: no images named {missing[:5]}")
        return [by_name[p.name] for p in paths]
    if bbox_file:
        odd = [p.name for p in paths if not p.stem.isdigit()]
        if odd:
            raise SystemExit(f"--bbox-file {bbox_file} refers to images by id: name the images by their ids "
                             f"(COCO's 000000000785.jpg) or give --ann-file; found {odd[:5]}")
        return [int(p.stem) for p in paths]
    return list(range(len(paths)))


def list_images(path: Path) -> list[Path]:
    """The image itself, or a folder's images in name order with numbers by value (frame_2 before frame_10)."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise SystemExit(f"input {path} is neither an image file nor a folder")
    return sorted((p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES),
                  key=lambda p: [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", p.name)])


def read_images(paths: list[Path], ids: list[int], skipped: list[str]) -> Iterator[tuple[int, Path, np.ndarray]]:
    """(id, path, RGB image) of each readable image; an unreadable one is reported and added to ``skipped``."""
    from densevit.datasets.io import read_image

    for image_id, path in zip(ids, paths, strict=True):
        try:
            image = read_image(path)
        except OSError as err:
            tqdm.write(f"skipped {path}: {err}")
            skipped.append(str(path))
            continue
        yield image_id, path, image


def open_video(path: Path, fps: float | None, skipped: list[str]) -> tuple[Iterator, int | None, float]:
    """A video file or a folder of frames -> ((frame index, path, RGB frame) iterator, frame count, frames/s)."""
    if path.is_dir():
        frames = list_images(path)
        if not frames:
            raise SystemExit(f"--video: folder {path} holds no frames ({' '.join(sorted(IMAGE_SUFFIXES))})")
        return read_images(frames, list(range(len(frames))), skipped), len(frames), fps or FRAMES_FPS
    import cv2

    if not path.is_file():
        raise SystemExit(f"video {path} does not exist")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise SystemExit(f"cannot open video {path}: OpenCV {cv2.__version__} reads videos through FFmpeg, in "
                         f"containers such as {' '.join(sorted(VIDEO_SUFFIXES))} holding H.264, H.265, MPEG-4, "
                         "MJPEG, VP8/VP9 or AV1; check that it plays, or re-encode it: "
                         "ffmpeg -i INPUT -c:v libx264 OUTPUT.mp4")

    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))  # from the container: an estimate for some, 0 if unknown

    def frames() -> Iterator[tuple[int, Path, np.ndarray]]:
        index = 0
        while True:
            ok, frame = capture.read()
            # OpenCV answers a frame it cannot decode as it answers the end: before the container's frame count,
            # try the next frames, so that one corrupt frame is skipped and named rather than ending the video
            retries = 0
            while not ok and index + retries < count - 1 and retries < MAX_UNREADABLE_FRAMES:
                retries += 1
                ok, frame = capture.read()
            for lost in range(index, index + retries if ok else index):
                tqdm.write(f"skipped frame {lost} of {path}: OpenCV could not decode it")
                skipped.append(f"{path.name} frame {lost}")
            if not ok:
                break
            index += retries
            yield index, path, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            index += 1
        capture.release()
        if index < count - 1:  # the count is an estimate for some containers: only a shortfall of 2+ is reported
            tqdm.write(f"{path}: the video ended at frame {index} of the {count} its container announces "
                       f"(more than {MAX_UNREADABLE_FRAMES} frames in a row could not be decoded)")

    return frames(), count if count > 0 else None, fps or capture.get(cv2.CAP_PROP_FPS) or FRAMES_FPS


class AnnotatedVideo:
    """The annotated frames as an mp4v video and one JSON line per frame; the video is written under a temporary
    name and takes its own on ``close`` (also after Ctrl-C: the frames done), so no truncated file carries it."""

    def __init__(self, path: Path, lines: Path, fps: float) -> None:
        self.path, self.fps = path, fps
        self.tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")  # the suffix chooses the container
        self.lines = lines.open("w")
        self.writer, self.size = None, None

    def add(self, index: int, name: str, picture: np.ndarray, records: list[dict]) -> None:
        """Append a frame's RGB picture and its JSON line (frame index, time in seconds, its records)."""
        import cv2

        h, w = picture.shape[:2]
        if self.writer is None:
            self.size = h, w
            # MPEG-4 wants even sides (the encoder would crop an odd one): pad one black row / column instead
            self.writer = cv2.VideoWriter(str(self.tmp), cv2.VideoWriter_fourcc(*"mp4v"), self.fps,
                                          (w + w % 2, h + h % 2))
            if not self.writer.isOpened():
                raise SystemExit(f"OpenCV {cv2.__version__} cannot write {self.tmp} with the mp4v codec "
                                 "(is it built with FFmpeg?)")
        if (h, w) != self.size:
            raise SystemExit(f"frame {name} is drawn {w}x{h}, the video's frames are {self.size[1]}x{self.size[0]}: "
                             "the frames of a video must share one size")
        picture = cv2.copyMakeBorder(picture, 0, h % 2, 0, w % 2, cv2.BORDER_CONSTANT, value=(0, 0, 0))
        self.writer.write(cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
        self.lines.write(json.dumps({"frame": index, "time": round(index / self.fps, 3), "records": records}) + "\n")

    def close(self) -> None:
        """Finish the video and give it its name."""
        self.lines.close()
        if self.writer is not None:
            self.writer.release()
            os.replace(self.tmp, self.path)


def output_stems(paths: list[Path]) -> dict[Path, str]:
    """The name each image's pictures start with: its stem, or stem_suffix when another image shares the stem
    (x.jpg and x.png would otherwise overwrite each other's pictures)."""
    counts = Counter(p.stem for p in paths)
    return {p: p.stem if counts[p.stem] == 1 else f"{p.stem}_{p.suffix[1:].lower()}" for p in paths}


def write_atomic(path: Path, data: bytes) -> None:
    """Write through a temporary file, so an interrupted run never leaves a truncated file under ``path``."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> None:
    """The ``densevit-infer`` command: ``argv`` (default: the command line) as above."""
    args = parse_args(argv)
    # imported after parsing, so that --help answers at once (torch alone takes seconds to import)
    from densevit.apis import detect_people, inference, init_model, pose_inference, task_of
    from densevit.config import load_config
    from densevit.models.pose import TopDownPose
    from densevit.vis.canvas import png_bytes

    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    source, skipped = Path(args.input), []
    if args.video:  # opened before the model is built: a video that cannot be read fails at once
        if (out_dir / f"{source.stem}.mp4").resolve() == source.resolve():
            raise SystemExit(f"the annotated video would overwrite the input {source}: choose another --out-dir")
        frames, count, fps = open_video(source, args.fps, skipped)
    else:
        paths = list_images(source)
        stems = output_stems(paths)
        frames, count = read_images(paths, image_ids(paths, args.ann_file, args.bbox_file), skipped), len(paths)
    model = init_model(load_config(args.config, args.cfg_options), args.checkpoint, args.device)
    if model.weights_note:
        print(f"{args.checkpoint}: {model.weights_note}")
    task = task_of(model)
    if args.tile is not None:
        if not hasattr(model.model, "tile"):
            raise SystemExit(f"--tile applies to restoration models, not to {type(model.model).__name__}")
        if args.tile <= args.tile_overlap:
            raise SystemExit(f"--tile {args.tile} must be larger than --tile-overlap {args.tile_overlap}")
        model.model.tile, model.model.tile_overlap = args.tile, args.tile_overlap
    is_pose = isinstance(model.model, TopDownPose)
    if (args.det_config or args.bbox_file) and not is_pose:
        raise SystemExit(f"person boxes are for a top-down pose model; {args.config} builds "
                         f"{type(model.model).__name__}")
    detector = init_model(args.det_config, args.det_checkpoint, args.device) if args.det_config else None
    boxes = load_box_file(Path(args.bbox_file), args.det_score_thr) if args.bbox_file else None
    if args.video:
        video = AnnotatedVideo(out_dir / f"{source.stem}.mp4", out_dir / f"{source.stem}.jsonl", fps)
    records, done, seconds, start = [], 0, 0.0, time.perf_counter()
    try:  # the same loop for images and video frames: read, predict, draw, write
        for image_id, path, image in tqdm(frames, desc="inference", total=count,
                                          unit="frame" if args.video else "img"):
            tic = time.perf_counter()
            if detector is not None:
                people = detect_people(detector, image, args.det_class, args.det_score_thr)
                pred = pose_inference(model, image, *people)
            elif boxes is not None:
                pred = pose_inference(model, image, *boxes.get(image_id, (np.zeros((0, 4)), np.zeros(0))))
            else:
                pred = inference(model, [image])[0]
            seconds += time.perf_counter() - tic
            if args.video:
                video.add(image_id, path.name, task.frame(model, image, pred, args.score_thr),
                          task.records(model, pred, image_id, path.name))
            else:
                for suffix, picture in task.pictures(model, image, pred, args.score_thr).items():
                    write_atomic(out_dir / f"{stems[path]}{suffix}.png", png_bytes(picture))
                records += task.records(model, pred, image_id, path.name)
            done += 1
    finally:
        if args.video:
            video.close()
    unreadable = f"; skipped {len(skipped)} unreadable: {', '.join(skipped)}" if skipped else ""
    if args.video:
        if done == 0:
            raise SystemExit(f"no frame of {source} could be read (a codec FFmpeg does not decode?){unreadable}")
        print(f"{done} frames drawn into {video.path} ({fps:g} frames/s), their predictions in {video.lines.name}; "
              f"inference {done / seconds:.2f} frames/s ({seconds:.1f} s), {done / (time.perf_counter() - start):.2f} "
              f"frames/s with reading, drawing and writing{unreadable}")
        return
    write_atomic(out_dir / "predictions.json", json.dumps(records).encode())
    scored = [r["score"] for r in records if "score" in r]
    drawn = f"; {sum(s >= args.score_thr for s in scored)} of them score {args.score_thr} or more and are drawn " \
            "(--score-thr)" if scored else ""
    print(f"{len(records)} predictions for {done} images written to {out_dir / 'predictions.json'}{drawn}"
          + unreadable)

if __name__ == "__main__":
    main()

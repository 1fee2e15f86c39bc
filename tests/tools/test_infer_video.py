"""tools/infer.py on a video: a short clip written with OpenCV (segmentation) and a folder of frames (pose) become
an annotated mp4 with as many frames and one JSON line per frame; a video it cannot open is named."""

from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from densevit.apis import inference, init_model, task_of
from densevit.config import build, load_config, to_plain

QUICKSTART = Path(__file__).resolve().parents[2] / "configs" / "quickstart"
SEG_CONFIG = QUICKSTART / "upernet_vit_tiny_demo.py"
POSE_CONFIG = QUICKSTART / "topdown_pose_hybrid_vit_tiny_demo.py"
DET_CONFIG = QUICKSTART / "mask_rcnn_vit_tiny_demo.py"
DEPTH_CONFIG = QUICKSTART / "dpt_vit_tiny_demo.py"
SR_CONFIG = QUICKSTART / "sr_x2_hybrid_vit_tiny_demo.py"

pytestmark = pytest.mark.usefixtures("one_thread")


def save_checkpoint(config: Path, path: Path) -> Path:
    """The config's initial (seeded) model, saved as a training checkpoint would be."""
    torch.manual_seed(0)
    torch.save({"state_dict": build(to_plain(load_config(config).model), "model").state_dict()}, path)
    return path


def clip_frames(count: int = 6, height: int = 64, width: int = 64) -> list[np.ndarray]:
    """RGB frames of a bright square moving over a gradient."""
    ramp = np.linspace(0, 200, width, dtype=np.uint8)[None, :, None].repeat(height, 0).repeat(3, 2)
    frames = []
    for i in range(count):
        frame = ramp.copy()
        frame[10:30, 5 + 6 * i:25 + 6 * i] = (250, 220, 40)
        frames.append(frame)
    return frames


def write_clip(path: Path, fps: float = 12.0) -> Path:
    """Six 64x64 frames as an mp4v video."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (64, 64))
    for frame in clip_frames():
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def read_video(path: Path) -> tuple[list[np.ndarray], float]:
    """Every decodable frame (BGR) and the frames per second, as a player sees them."""
    capture = cv2.VideoCapture(str(path))
    assert capture.isOpened(), f"{path} does not open"
    frames, (ok, frame) = [], capture.read()
    while ok:
        frames.append(frame)
        ok, frame = capture.read()
    return frames, capture.get(cv2.CAP_PROP_FPS)


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_video_becomes_an_annotated_video_and_json_lines(tool, tmp_path, capsys):
    clip = write_clip(tmp_path / "clip.mp4")
    ckpt = save_checkpoint(SEG_CONFIG, tmp_path / "seg.pth")
    tool("infer.py", SEG_CONFIG, ckpt, clip, "--out-dir", tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["clip.jsonl", "clip.mp4"]
    frames, fps = read_video(tmp_path / "out" / "clip.mp4")
    assert len(frames) == 6 and {f.shape for f in frames} == {(64, 64, 3)} and fps == pytest.approx(12.0)
    lines = read_lines(tmp_path / "out" / "clip.jsonl")
    assert [(line["frame"], line["time"]) for line in lines] == [(i, round(i / 12, 3)) for i in range(6)]
    # the records are the API's for the decoded frame
    model = init_model(SEG_CONFIG, ckpt)
    decoded, _ = read_video(clip)
    expected = task_of(model).records(model, inference(model, decoded[3], channel_order="bgr")[0], 3, "clip.mp4")
    assert lines[3]["records"] == expected
    assert re.search(r"6 frames drawn into .*clip\.mp4 \(12 frames/s\).*; inference \d+\.\d\d frames/s",
                     capsys.readouterr().out)


@pytest.mark.parametrize(("config", "size"), [
    (DET_CONFIG, (64, 64)),  # boxes and masks over the frame
    (DEPTH_CONFIG, None),  # the colour bar widens the frame
    (SR_CONFIG, (128, 2 * 128 + 4)),  # input | restored at the output's size
])
def test_every_task_draws_frames_of_one_size(tool, tmp_path, config, size):
    tool("infer.py", config, save_checkpoint(config, tmp_path / "model.pth"), write_clip(tmp_path / "clip.mov"),
         "--out-dir", tmp_path / "out", "--score-thr", 0.0)
    frames, _ = read_video(tmp_path / "out" / "clip.mp4")
    assert len(frames) == 6 and len({f.shape for f in frames}) == 1
    assert len(read_lines(tmp_path / "out" / "clip.jsonl")) == 6
    assert frames[0].shape[:2] == size if size else frames[0].shape[0] == 64 and frames[0].shape[1] > 64


def test_a_folder_of_frames_becomes_a_video_with_a_person_per_frame(tool, tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    for i, frame in enumerate(clip_frames(height=63), start=8):  # 8, 9, 10, ...: in number order, not name order
        cv2.imwrite(str(frames / f"f_{i}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    ckpt = save_checkpoint(POSE_CONFIG, tmp_path / "pose.pth")
    tool("infer.py", POSE_CONFIG, ckpt, frames, "--video", "--fps", 5, "--out-dir", tmp_path / "out")
    written, fps = read_video(tmp_path / "out" / "frames.mp4")
    # an odd side gains a black row: the MPEG-4 encoder would otherwise crop the frame
    assert len(written) == 6 and {f.shape for f in written} == {(64, 64, 3)} and fps == pytest.approx(5.0)
    assert all(f[63].max() < 40 for f in written)
    lines = read_lines(tmp_path / "out" / "frames.jsonl")
    assert [line["time"] for line in lines] == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert [[r["file_name"] for r in line["records"]] for line in lines] == [[f"f_{i}.png"] for i in range(8, 14)]
    assert all(line["records"][0]["bbox"] == [0, 0, 64, 63] for line in lines)  # the whole frame as the person


def test_a_video_that_cannot_be_read_is_named(tool, tmp_path, capsys):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    with pytest.raises(SystemExit, match=r"cannot open video .*broken\.mp4: .*\.mkv .*H\.264"):
        tool("infer.py", "no_config.py", "no.pth", broken, "--out-dir", tmp_path / "out")
    with pytest.raises(SystemExit, match=r"video .*missing\.avi does not exist"):
        tool("infer.py", "no_config.py", "no.pth", tmp_path / "missing.avi", "--out-dir", tmp_path / "out")
    with pytest.raises(SystemExit, match="2"):
        tool("infer.py", "no_config.py", "no.pth", broken, "--out-dir", tmp_path / "out", "--bbox-file", "b.json")
    assert "for a video use --det-config" in capsys.readouterr().err


def test_a_frame_that_cannot_be_decoded_is_skipped_and_named(tool, tmp_path, capsys):
    """OpenCV answers an undecodable frame as it answers the end of the video: the frames after it still come."""
    clip = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 64))
    for frame in clip_frames():
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    data = bytearray(clip.read_bytes())
    starts = [m.start() for m in re.finditer(rb"\xff\xd8\xff", data)]  # each frame is a JPEG: zero the third
    assert len(starts) == 6
    data[starts[2]:starts[3] - 16] = bytes(starts[3] - 16 - starts[2])
    clip.write_bytes(bytes(data))
    tool("infer.py", SEG_CONFIG, save_checkpoint(SEG_CONFIG, tmp_path / "seg.pth"), clip, "--out-dir", tmp_path / "out")
    assert [line["frame"] for line in read_lines(tmp_path / "out" / "clip.jsonl")] == [0, 1, 3, 4, 5]
    assert len(read_video(tmp_path / "out" / "clip.mp4")[0]) == 5
    printed = capsys.readouterr()
    assert "skipped frame 2 of" in printed.out + printed.err and "clip.avi frame 2" in printed.out

"""Synthetic people for the pose demo: articulated figures with the 17 COCO joints, in the demo's rooms.

A figure is posed from a kinematic tree (pelvis -> spine -> neck -> head, shoulders -> elbows -> wrists, hips ->
knees -> ankles) with random joint angles, proportions, limb thickness and clothing colours, and stands in a demo
room among the demo's shape cards, which occlude it when nearer (as do other figures and its own torso).

Left and right are identifiable as they are for people: a figure seen from the front shows a face (eyes, nose,
mouth) and a collar, one seen from the back shows hair and a plain back; and the figure's left limbs are lighter
with a light stripe along them while its right limbs are darker. Seen from the front, the figure's left side is
on the image's right.

Keypoints follow COCO: x, y with pixel centres at integers, v = 2 visible, 1 hidden (by a nearer thing, its own
body, or the back of its head for the face), 0 outside the image (x = y = 0). ``render_pose_scene`` returns the
image and, per figure, its keypoints and visible mask; ``densevit.datasets.demo`` writes them in the COCO layout.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from densevit.datasets.demo_scene import Scene, add_sensor_noise, object_masks, render_image, sample_scene

__all__ = ["Figure", "PoseScene", "render_pose_scene", "sample_figure", "sample_pose_scene"]

RGB = tuple[int, int, int]

# Body parts: the codes drawn into the part map (figure index * _PARTS + code).
(_HEAD, _TORSO, _NECK, _L_UPPER_ARM, _L_FOREARM, _L_HAND, _R_UPPER_ARM, _R_FOREARM, _R_HAND,
 _L_THIGH, _L_SHIN, _L_FOOT, _R_THIGH, _R_SHIN, _R_FOOT) = range(1, 16)
_PARTS = 16
# The parts that show each COCO joint when it is visible.
_JOINT_PARTS: tuple[frozenset[int], ...] = tuple(frozenset(p) for p in (
    (_HEAD,), (_HEAD,), (_HEAD,), (_HEAD,), (_HEAD,),  # nose, eyes, ears
    (_TORSO, _L_UPPER_ARM), (_TORSO, _R_UPPER_ARM), (_L_UPPER_ARM, _L_FOREARM), (_R_UPPER_ARM, _R_FOREARM),
    (_L_FOREARM, _L_HAND), (_R_FOREARM, _R_HAND), (_TORSO, _L_THIGH), (_TORSO, _R_THIGH),
    (_L_THIGH, _L_SHIN), (_R_THIGH, _R_SHIN), (_L_SHIN, _L_FOOT), (_R_SHIN, _R_FOOT),
))
_FACE = (0, 1, 2)  # nose and eyes: hidden by the back of the head
_PERSON_HEIGHT = 1.7  # metres; sets a figure's depth from its size in pixels
_SIZE_RANGE = (80.0, 230.0)  # figure height in px at 256
_REF_SIZE = 256.0
_MIN_VISIBLE_JOINTS = 6
_MIN_VISIBLE_FRACTION = 0.35
_FIGURE_STREAM = 7  # random stream of the figures, apart from the room's and the cards'
_FIGURE_COUNT_P = (0.5, 0.35, 0.15)  # chance of 1, 2, 3 figures
_PLACEMENT_TRIES = 5
_MAX_FIGURE_IOU = 0.3


def _direction(angle: float) -> np.ndarray:
    """Unit vector at ``angle`` radians from straight down (+y), turning toward +x."""
    return np.array([np.sin(angle), np.cos(angle)])


def _perpendicular(direction: np.ndarray) -> np.ndarray:
    """The direction turned a quarter towards +x when it points down: the image's right of a standing body."""
    return np.array([direction[1], -direction[0]])


def _random_colour(rng: np.random.Generator, saturation: tuple[float, float] = (0.2, 1.0),
                   value: tuple[float, float] = (0.25, 0.95)) -> np.ndarray:
    hsv = np.array([[[rng.uniform(0, 180), rng.uniform(*saturation) * 255, rng.uniform(*value) * 255]]], np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float64)


@dataclass(frozen=True, eq=False)
class Figure:
    """One posed figure: its 17 joints, how it faces, its proportions and its look."""

    joints: np.ndarray  # [17, 2] (x, y), COCO order, pixel centres at integers
    head_center: np.ndarray  # [2]
    head_radius: float
    neck_base: np.ndarray  # [2] top of the torso
    facing_front: bool  # the face is seen; the figure's left is on the image's right
    limb_width: float  # px
    arm_behind: int  # -1: both arms in front of the torso; 0 / 1: the left / right arm passes behind it
    skin: np.ndarray  # RGB float [3]
    top: np.ndarray  # clothing of the torso and upper arms
    bottom: np.ndarray  # clothing of the legs
    hair: np.ndarray
    short_sleeves: bool
    depth: float  # metres


def sample_figure(rng: np.random.Generator, height: int, width: int, focal: float) -> Figure:
    """A figure with random proportions, pose, clothes and place (it may be cut by the image border)."""
    scale = min(height, width) / _REF_SIZE
    size = float(np.exp(rng.uniform(*np.log(_SIZE_RANGE)))) * scale
    front = bool(rng.uniform() < 0.7)
    side = 1.0 if front else -1.0  # image-x direction of the figure's left side
    lean = float(np.clip(rng.normal(0.0, 0.25), -0.8, 0.8))
    torso_len = size * rng.uniform(0.27, 0.32)
    shoulder_half = size * rng.uniform(0.09, 0.13)
    hip_half = size * rng.uniform(0.06, 0.09)
    upper_arm, forearm = size * rng.uniform(0.15, 0.18), size * rng.uniform(0.13, 0.16)
    thigh, shin = size * rng.uniform(0.22, 0.26), size * rng.uniform(0.21, 0.25)
    head_radius = size * rng.uniform(0.055, 0.07)
    neck_len = size * rng.uniform(0.025, 0.045)

    pelvis = np.zeros(2)
    up = -_direction(lean)  # from the pelvis towards the neck
    neck_base = pelvis + up * torso_len
    across = _perpendicular(-up)  # image right of the torso's axis
    joints = np.zeros((17, 2))
    for k, sign in ((5, side), (6, -side)):  # shoulders
        joints[k] = neck_base + sign * shoulder_half * across
    for k, sign in ((11, side), (12, -side)):  # hips
        joints[k] = pelvis + sign * hip_half * across
    for shoulder, elbow, wrist, sign in ((5, 7, 9, side), (6, 8, 10, -side)):
        raise_angle = rng.uniform(-0.4, 2.9)  # 0 hangs down, pi points up; outward for positive values
        arm_angle = lean + sign * raise_angle
        joints[elbow] = joints[shoulder] + upper_arm * _direction(arm_angle)
        bend = rng.uniform(0.0, 2.4) * rng.choice([-1.0, 1.0])
        joints[wrist] = joints[elbow] + forearm * _direction(arm_angle + bend)
    kick = rng.uniform() < 0.15
    for hip, knee, ankle, sign in ((11, 13, 15, side), (12, 14, 16, -side)):
        spread = rng.uniform(-0.2, 1.3 if kick else 0.6)
        leg_angle = lean + sign * spread
        joints[knee] = joints[hip] + thigh * _direction(leg_angle)
        bend = rng.uniform(0.0, 1.4) * rng.choice([-1.0, 1.0])
        joints[ankle] = joints[knee] + shin * _direction(leg_angle + bend)
    tilt = lean + rng.normal(0.0, 0.2)
    head_up = -_direction(tilt)
    head_center = neck_base + head_up * (neck_len + head_radius)
    head_across = _perpendicular(-head_up)
    joints[0] = head_center - 0.15 * head_radius * head_up  # nose
    for k, sign in ((1, side), (2, -side)):  # eyes
        joints[k] = head_center + 0.2 * head_radius * head_up + sign * 0.38 * head_radius * head_across
    for k, sign in ((3, side), (4, -side)):  # ears
        joints[k] = head_center + 0.1 * head_radius * head_up + sign * 0.98 * head_radius * head_across

    # Place the figure: its extent mostly inside the image, a little cut off now and then.
    lo = np.minimum(joints.min(0), head_center - head_radius)
    hi = np.maximum(joints.max(0), head_center + head_radius)
    overhang = 0.15 * (hi - lo)
    low_corner = np.array([0.0, 0.0]) - lo - overhang
    high_corner = np.array([width, height]) - hi + overhang
    offset = rng.uniform(np.minimum(low_corner, high_corner), np.maximum(low_corner, high_corner))
    skin = _random_colour(rng, (0.2, 0.6), (0.35, 0.95))
    return Figure(
        joints=joints + offset,
        head_center=head_center + offset,
        head_radius=float(head_radius),
        neck_base=neck_base + offset,
        facing_front=front,
        limb_width=float(size * rng.uniform(0.055, 0.1)),
        arm_behind=int(rng.choice([-1, -1, 0, 1])),
        skin=skin,
        top=_random_colour(rng),
        bottom=_random_colour(rng),
        hair=_random_colour(rng, (0.1, 0.8), (0.05, 0.6)),
        short_sleeves=bool(rng.uniform() < 0.5),
        depth=float(focal * _PERSON_HEIGHT / size),
    )


@dataclass(frozen=True, eq=False)
class PoseScene:
    """A demo room with its shape cards (``room``) and the figures standing among them."""

    room: Scene
    figures: tuple[Figure, ...]  # far to near


def _extent(fig: Figure) -> np.ndarray:
    """The figure's joints and head as a box [x0, y0, x1, y1]."""
    lo = np.minimum(fig.joints.min(0), fig.head_center - fig.head_radius)
    hi = np.maximum(fig.joints.max(0), fig.head_center + fig.head_radius)
    return np.concatenate([lo, hi])


def _box_iou(a: np.ndarray, b: np.ndarray) -> float:
    inter = np.prod(np.clip(np.minimum(a[2:], b[2:]) - np.maximum(a[:2], b[:2]), 0, None))
    return float(inter / (np.prod(a[2:] - a[:2]) + np.prod(b[2:] - b[:2]) - inter))


def _sample_figures(rng: np.random.Generator, height: int, width: int, focal: float) -> list[Figure]:
    """One to three figures (half the images have one); a figure overlapping another much is redrawn a few times,
    so crowds happen but are not the rule."""
    figures: list[Figure] = []
    for _ in range(int(rng.choice(len(_FIGURE_COUNT_P), p=_FIGURE_COUNT_P)) + 1):
        for _ in range(_PLACEMENT_TRIES):
            fig = sample_figure(rng, height, width, focal)
            if all(_box_iou(_extent(fig), _extent(other)) <= _MAX_FIGURE_IOU for other in figures):
                break
        figures.append(fig)
    return sorted(figures, key=lambda f: -f.depth)


def sample_pose_scene(rng: np.random.Generator, height: int, width: int) -> PoseScene:
    """Draw a room, 1-3 figures and the room's cards; figures left mostly hidden are dropped (one always stays)."""
    room = sample_scene(rng, height, width, num_objects=(1, 3))
    figure_rng = np.random.default_rng([room.seed, _FIGURE_STREAM])
    while True:
        scene = PoseScene(room=room, figures=tuple(_sample_figures(figure_rng, height, width, room.focal)))
        _, keypoints, masks = render_pose_scene(scene, with_image=False)
        full = [_draw_figure(f, None, np.full((height, width), -1, np.int32), 0) for f in scene.figures]
        kept = tuple(f for f, kpts, mask, alone in zip(scene.figures, keypoints, masks, full, strict=True)
                     if (kpts[:, 2] == 2).sum() >= _MIN_VISIBLE_JOINTS
                     and mask.sum() >= _MIN_VISIBLE_FRACTION * (alone >= 0).sum())
        if kept:
            return PoseScene(room=room, figures=kept)


# ----------------------------------------------------------------------------------------------------------
# Rendering


def _pt(p: np.ndarray) -> tuple[int, int]:
    """A point in cv2's 4-bit fixed point (pixel centres at integers)."""
    return round(p[0] * 16), round(p[1] * 16)


def _lighter(colour: np.ndarray, amount: float) -> np.ndarray:
    return colour + (255.0 - colour) * amount


def _draw_figure(fig: Figure, image: np.ndarray | None, parts: np.ndarray, index: int) -> np.ndarray:
    """Paint one figure into ``image`` (float RGB, may be None) and its part codes into ``parts``; returns parts."""
    j, w = fig.joints, fig.limb_width
    code0 = index * _PARTS

    def limb(a: np.ndarray, b: np.ndarray, width: float, colour: np.ndarray, part: int, left: bool | None) -> None:
        thick = max(1, round(width))
        shade = colour if left is None else _lighter(colour, 0.35) if left else colour * 0.7
        if image is not None:
            cv2.line(image, _pt(a), _pt(b), shade.tolist(), thick, cv2.LINE_AA, shift=4)
            if left:  # the left-side cue: a light stripe along the limb
                cv2.line(image, _pt(a), _pt(b), _lighter(colour, 0.8).tolist(), max(1, thick // 4), cv2.LINE_AA,
                         shift=4)
        cv2.line(parts, _pt(a), _pt(b), code0 + part, thick, cv2.LINE_8, shift=4)

    def disc(center: np.ndarray, radius: float, colour: np.ndarray, part: int) -> None:
        r = max(1, round(radius * 16))
        if image is not None:
            cv2.circle(image, _pt(center), r, colour.tolist(), -1, cv2.LINE_AA, shift=4)
        cv2.circle(parts, _pt(center), r, code0 + part, -1, cv2.LINE_8, shift=4)

    def arm(left: bool) -> None:
        s, e, wr = (5, 7, 9) if left else (6, 8, 10)
        upper, fore, hand = (_L_UPPER_ARM, _L_FOREARM, _L_HAND) if left else (_R_UPPER_ARM, _R_FOREARM, _R_HAND)
        limb(j[s], j[e], 0.9 * w, fig.top, upper, left)
        limb(j[e], j[wr], 0.75 * w, fig.skin if fig.short_sleeves else fig.top, fore, left)
        reach = j[wr] - j[e]
        disc(j[wr] + 0.35 * w * reach / max(np.linalg.norm(reach), 1e-6), 0.5 * w, fig.skin, hand)

    def leg(left: bool) -> None:
        h, k, a = (11, 13, 15) if left else (12, 14, 16)
        thigh, shin, foot = (_L_THIGH, _L_SHIN, _L_FOOT) if left else (_R_THIGH, _R_SHIN, _R_FOOT)
        limb(j[h], j[k], 1.2 * w, fig.bottom, thigh, left)
        limb(j[k], j[a], 0.95 * w, fig.bottom, shin, left)
        down = j[a] - j[k]
        disc(j[a] + 0.3 * w * down / max(np.linalg.norm(down), 1e-6), 0.55 * w, fig.hair * 0.5, foot)

    if fig.arm_behind >= 0:
        arm(left=fig.arm_behind == 0)
    leg(left=not fig.facing_front)  # the far leg first
    leg(left=fig.facing_front)
    torso = np.array([j[5], j[6], j[12], j[11]])
    mid = torso.mean(0)
    torso = mid + (torso - mid) * 1.08
    if image is not None:
        cv2.fillPoly(image, [np.array([_pt(p) for p in torso], np.int32)], fig.top.tolist(), cv2.LINE_AA, shift=4)
    cv2.fillPoly(parts, [np.array([_pt(p) for p in torso], np.int32)], code0 + _TORSO, cv2.LINE_8, shift=4)
    limb(fig.neck_base, fig.head_center, 0.6 * w, fig.skin, _NECK, None)
    if image is not None and fig.facing_front:  # a collar only the front shows
        collar = fig.neck_base + 0.25 * (mid - fig.neck_base)
        cv2.line(image, _pt(j[5] * 0.25 + fig.neck_base * 0.75), _pt(collar), _lighter(fig.top, 0.6).tolist(),
                 max(1, int(0.3 * w)), cv2.LINE_AA, shift=4)
        cv2.line(image, _pt(j[6] * 0.25 + fig.neck_base * 0.75), _pt(collar), _lighter(fig.top, 0.6).tolist(),
                 max(1, int(0.3 * w)), cv2.LINE_AA, shift=4)
    for left in (True, False):
        if fig.arm_behind != (0 if left else 1):
            arm(left)
    r = fig.head_radius
    for ear in (3, 4):
        disc(j[ear], 0.28 * r, fig.skin * 0.9, _HEAD)
    disc(fig.head_center, r, fig.hair, _HEAD)
    if image is not None and fig.facing_front:
        up = fig.head_center - j[0]
        face = fig.head_center - 0.18 * up / max(np.linalg.norm(up), 1e-6) * r
        cv2.circle(image, _pt(face), max(16, round(0.85 * r * 16)), fig.skin.tolist(), -1, cv2.LINE_AA, shift=4)
        dark = (fig.skin * 0.25).tolist()
        for eye in (1, 2):
            cv2.circle(image, _pt(j[eye]), max(16, round(0.14 * r * 16)), dark, -1, cv2.LINE_AA, shift=4)
        cv2.circle(image, _pt(j[0]), max(16, round(0.12 * r * 16)), (fig.skin * 0.6).tolist(), -1,
                   cv2.LINE_AA, shift=4)
        mouth = j[0] + 0.35 * (j[0] - fig.head_center)
        cv2.circle(image, _pt(mouth), max(16, round(0.1 * r * 16)), (fig.skin * 0.45).tolist(), -1,
                   cv2.LINE_AA, shift=4)
    return parts


def _joint_visibility(fig: Figure, parts: np.ndarray, index: int) -> np.ndarray:
    """COCO keypoints [17, 3] of one figure from the scene's part map."""
    h, w = parts.shape
    padded = np.pad(parts, 1, constant_values=-1)
    out = np.zeros((17, 3), np.float32)
    for k, (x, y) in enumerate(fig.joints):
        col, row = round(x), round(y)
        if not (0 <= col < w and 0 <= row < h):
            continue
        around = set((padded[row:row + 3, col:col + 3] - index * _PARTS).ravel().tolist())
        seen = bool(around & _JOINT_PARTS[k]) and (fig.facing_front or k not in _FACE)
        out[k] = (x, y, 2 if seen else 1)
    return out


def render_pose_scene(scene: PoseScene, with_image: bool = True
                      ) -> tuple[np.ndarray | None, list[np.ndarray], list[np.ndarray]]:
    """Render -> (RGB uint8 [H, W, 3] with sensor noise, or None; keypoints [17, 3] and visible masks bool
    [H, W] per figure, in the order of ``scene.figures``)."""
    room = scene.room
    h, w = room.height, room.width
    image = render_image(room).astype(np.float32) if with_image else None
    cards = object_masks(room)
    parts = np.full((h, w), -1, np.int32)
    painted = image.copy() if image is not None else None
    # Painter's order over cards and figures: a card nearer than a figure is pasted back over it.
    for index, fig in enumerate(scene.figures):
        _draw_figure(fig, painted, parts, index)
        for card, mask in zip(room.objects, cards, strict=True):
            if card.depth < fig.depth:
                parts[mask] = -2
                if painted is not None:
                    painted[mask] = image[mask]
    keypoints = [_joint_visibility(fig, parts, i) for i, fig in enumerate(scene.figures)]
    masks = [(parts // _PARTS == i) & (parts >= 0) for i in range(len(scene.figures))]
    out = None
    if painted is not None:
        out = add_sensor_noise(room, np.clip(np.round(painted), 0, 255).astype(np.uint8))
    return out, keypoints, masks

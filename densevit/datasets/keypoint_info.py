"""Keypoint-set metadata: joint names, left/right flip pairs, skeleton and OKS sigmas (COCO's 17 or any other)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["COCO_KEYPOINTS", "KeypointInfo", "from_coco_category"]


@dataclass(frozen=True)
class KeypointInfo:
    """One keypoint set; indexes are 0-based (COCO files write the skeleton 1-based).

    ``upper_body`` lists the joints half-body augmentation treats as the upper body (empty: no half-body).
    """

    names: tuple[str, ...]
    flip_pairs: tuple[tuple[int, int], ...]
    skeleton: tuple[tuple[int, int], ...]
    sigmas: tuple[float, ...]
    upper_body: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        # Normalise lists (from configs / JSON) to tuples so the dataclass stays hashable and comparable.
        object.__setattr__(self, "names", tuple(str(n) for n in self.names))
        object.__setattr__(self, "flip_pairs", tuple((int(a), int(b)) for a, b in self.flip_pairs))
        object.__setattr__(self, "skeleton", tuple((int(a), int(b)) for a, b in self.skeleton))
        object.__setattr__(self, "sigmas", tuple(float(s) for s in self.sigmas))
        object.__setattr__(self, "upper_body", tuple(int(k) for k in self.upper_body))
        k = len(self.names)
        if k == 0:
            raise ValueError("KeypointInfo: names is empty; a keypoint set needs at least one joint")
        if len(set(self.names)) != k:
            raise ValueError(f"KeypointInfo: joint names repeat: {list(self.names)}")
        if len(self.sigmas) != k or any(s <= 0 for s in self.sigmas):
            raise ValueError(
                f"KeypointInfo: sigmas must be {k} positive numbers (one per joint), found {list(self.sigmas)}"
            )
        for field, pairs in (("flip_pairs", self.flip_pairs), ("skeleton", self.skeleton)):
            bad = [p for p in pairs if not (0 <= p[0] < k and 0 <= p[1] < k) or p[0] == p[1]]
            if bad:
                raise ValueError(
                    f"KeypointInfo: {field} {bad} out of range: indexes must be distinct and in [0, {k}) "
                    f"for the {k} joints {list(self.names)}"
                )
        flat = [i for pair in self.flip_pairs for i in pair]
        if len(flat) != len(set(flat)):
            raise ValueError(f"KeypointInfo: a joint appears in two flip_pairs: {list(self.flip_pairs)}")
        bad_upper = [i for i in self.upper_body if not 0 <= i < k]
        if bad_upper:
            raise ValueError(f"KeypointInfo: upper_body indexes {bad_upper} out of range [0, {k})")

    @property
    def num_keypoints(self) -> int:
        """Number of joints K."""
        return len(self.names)

    @property
    def flip_index(self) -> tuple[int, ...]:
        """Permutation that relabels joints after a horizontal flip (joint k takes the label flip_index[k])."""
        index = list(range(self.num_keypoints))
        for a, b in self.flip_pairs:
            index[a], index[b] = b, a
        return tuple(index)

    @property
    def sides(self) -> tuple[int, ...]:
        """Per joint +1 (left), -1 (right) or 0 (centre): from the names, else the order within its flip pair."""
        sides = [0] * self.num_keypoints
        for a, b in self.flip_pairs:
            side_a, side_b = _name_side(self.names[a]), _name_side(self.names[b])
            if side_a and side_b and side_a == -side_b:
                sides[a], sides[b] = side_a, side_b
            else:
                sides[a], sides[b] = 1, -1
        return tuple(sides)


_LEFT_RIGHT = re.compile(r"(?i)(left|right|^l(?=[_\-. ])|^r(?=[_\-. ]))")


def _name_side(name: str) -> int:
    """+1 for a left joint name, -1 for a right one, 0 otherwise."""
    match = _LEFT_RIGHT.search(name)
    if match is None:
        return 0
    return 1 if match.group(0).lower().startswith("l") else -1


def _mirror_name(name: str) -> str | None:
    """The name with left and right swapped (keeping case), or None when it names no side."""
    match = _LEFT_RIGHT.search(name)
    if match is None:
        return None
    word = match.group(0)
    swapped = {"left": "right", "right": "left", "l": "r", "r": "l"}[word.lower()]
    if word.isupper():
        swapped = swapped.upper()
    elif word[0].isupper():
        swapped = swapped.capitalize()
    return name[: match.start()] + swapped + name[match.end():]


def flip_pairs_from_names(names: Sequence[str]) -> tuple[tuple[int, int], ...]:
    """Left/right pairs found by swapping "left" and "right" in the joint names (left joint first)."""
    index = {n: i for i, n in enumerate(names)}
    pairs = []
    for i, name in enumerate(names):
        mirror = _mirror_name(name)
        if mirror is not None and _name_side(name) > 0 and mirror in index:
            pairs.append((i, index[mirror]))
    return tuple(pairs)


def from_coco_category(
    category: Mapping[str, Any],
    sigmas: Sequence[float] | None = None,
    flip_pairs: Sequence[Sequence[int]] | None = None,
    upper_body: Sequence[int] | None = None,
    source: str = "COCO category",
) -> KeypointInfo:
    """Keypoint metadata from a COCO ``categories`` entry (``keypoints`` names, 1-based ``skeleton``).

    COCO files carry no sigmas or flip pairs: ``sigmas`` is required unless the names are COCO's 17 (then COCO's
    are used); ``flip_pairs`` defaults to the pairs whose names differ only in left/right; ``upper_body``
    defaults to COCO's for COCO's names and to none (no half-body) otherwise. ``source`` names the file in errors.
    """
    names = category.get("keypoints")
    if not isinstance(names, list) or not names:
        raise ValueError(f"{source}: category {category.get('name')!r} has no 'keypoints' list of joint names")
    names = tuple(str(n) for n in names)
    is_coco = names == COCO_KEYPOINTS.names
    if sigmas is None:
        if not is_coco:
            raise ValueError(
                f"{source}: category {category.get('name')!r} has {len(names)} joints that are not COCO's 17; "
                "give their OKS sigmas (e.g. the dataset's or evaluator's `sigmas=[...]` config field)"
            )
        sigmas = COCO_KEYPOINTS.sigmas
    if len(sigmas) != len(names):
        raise ValueError(
            f"{source}: category {category.get('name')!r} declares {len(names)} keypoints, "
            f"but {len(sigmas)} sigmas were given"
        )
    skeleton = category.get("skeleton", [])
    k = len(names)
    bad = [s for s in skeleton if len(s) != 2 or not all(1 <= int(i) <= k for i in s)]
    if bad:
        raise ValueError(f"{source}: skeleton links {bad[:5]} are not 1-based joint indexes in [1, {k}]")
    if flip_pairs is None:
        flip_pairs = COCO_KEYPOINTS.flip_pairs if is_coco else flip_pairs_from_names(names)
    if upper_body is None:
        upper_body = COCO_KEYPOINTS.upper_body if is_coco else ()
    try:
        return KeypointInfo(
            names=names,
            flip_pairs=tuple(tuple(p) for p in flip_pairs),
            skeleton=tuple((int(a) - 1, int(b) - 1) for a, b in skeleton),
            sigmas=tuple(sigmas),
            upper_body=tuple(upper_body),
        )
    except ValueError as err:
        raise ValueError(f"{source}: {err}") from err


# The 17 COCO person keypoints; sigmas are COCOeval's (its 0.26 .. 0.89 divided by 10, bit-identical floats).
# fmt: off
_COCO_NAMES = ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
               "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
               "right_knee", "left_ankle", "right_ankle")
_COCO_SIGMAS_X10 = (0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72, 0.62, 0.62, 1.07, 1.07, 0.87, 0.87,
                    0.89, 0.89)
_COCO_SKELETON_1BASED = ((16, 14), (14, 12), (17, 15), (15, 13), (12, 13), (6, 12), (7, 13), (6, 7), (6, 8),
                         (7, 9), (8, 10), (9, 11), (2, 3), (1, 2), (1, 3), (2, 4), (3, 5), (4, 6), (5, 7))
# fmt: on
COCO_KEYPOINTS = KeypointInfo(
    names=_COCO_NAMES,
    flip_pairs=tuple((k, k + 1) for k in range(1, 17, 2)),  # (1, 2) (3, 4) ... (15, 16)
    skeleton=tuple((a - 1, b - 1) for a, b in _COCO_SKELETON_1BASED),
    sigmas=tuple(s / 10.0 for s in _COCO_SIGMAS_X10),
    upper_body=tuple(range(11)),  # nose .. wrists; hips, knees, ankles are the lower body
)

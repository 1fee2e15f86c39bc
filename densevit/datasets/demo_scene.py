"""Synthetic shape scenes for the demo data: a scene model, a sampler and one renderer per target.

A scene is a level pinhole camera looking at a floor plane that meets a back wall, with flat shapes (cards)
standing or floating in front of it. Each shape has a class (its outline, never its colour), a random colour and
a known distance. Renderers turn one ``Scene`` into an RGB image, visible instance masks, a semantic label map,
a metric depth map, keypoints and a degraded copy, so every task sees the same scenes.

Conventions: image coordinates are pixel-edge coordinates (pixel ``(i, j)`` spans ``[j, j+1) x [i, i+1)``, as
COCO boxes and polygons use); ``Scene.objects`` is stored far to near, which is the painter's order, so occlusion
in the image and in the depth map always agree.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import cv2
import numpy as np

__all__ = [
    "DEMO_CLASSES",
    "DEMO_KEYPOINTS",
    "Background",
    "Scene",
    "ShapeObject",
    "Stroke",
    "add_sensor_noise",
    "background_depth",
    "degrade",
    "object_masks",
    "render_depth",
    "render_image",
    "render_instance_ids",
    "render_keypoints",
    "render_semantic",
    "render_visible_masks",
    "sample_scene",
]

# Semantic label k + 1 is DEMO_CLASSES[k]; 0 is background.
DEMO_CLASSES: tuple[str, ...] = ("ellipse", "rectangle", "triangle", "star", "ring")
# Defined points of each class, listed clockwise from 12 o'clock (see _clockwise_from_top).
DEMO_KEYPOINTS: dict[str, tuple[str, ...]] = {
    "ellipse": ("axis_end_0", "axis_end_1", "axis_end_2", "axis_end_3"),
    "rectangle": ("corner_0", "corner_1", "corner_2", "corner_3"),
    "triangle": ("corner_0", "corner_1", "corner_2"),
    "star": ("tip_0", "tip_1", "tip_2", "tip_3", "tip_4"),
    "ring": ("axis_end_0", "axis_end_1", "axis_end_2", "axis_end_3"),
}

RGB = tuple[int, int, int]

# Geometry at the reference resolution of 256 px; everything in pixels scales with the image.
_REF_SIZE = 256.0
_SIZE_RANGE = (16.0, 128.0)  # diameter of the circle an outline is drawn in, px at 256
_DEPTH_RANGE = (1.0, 8.0)  # metres
_PHYSICAL_SIZE = (0.45, 0.55)  # metres; fixes size = focal * physical / depth, the main depth cue
_MIN_VISIBLE_FRACTION = 0.2  # of the full outline's area, so border-cut objects count too
_MIN_VISIBLE_AREA = 64.0  # px at 256
_ELLIPSE_POINTS = 48
# Independent random streams derived from Scene.seed, so adding one kind of randomness never shifts another.
_TEXTURE_STREAM, _NOISE_STREAM, _DEGRADE_STREAM = 0, 1, 2


# eq=False throughout: the fields hold numpy arrays, which generated dataclass equality cannot compare.
@dataclass(frozen=True, eq=False)
class Stroke:
    """A clutter line or curve painted on the background (not an object)."""

    points: np.ndarray  # [N, 2] (x, y)
    colour: RGB
    thickness: int


@dataclass(frozen=True, eq=False)
class Background:
    """The room: a floor plane, a back wall, haze, and clutter that belongs to no object."""

    horizon: float  # image row of the horizon (the level camera's principal point row)
    camera_height: float  # metres above the floor
    wall_depth: float  # metres from the camera to the back wall
    wall_colour: RGB
    wall_gradient: float  # relative brightness change from the top to the bottom of the wall
    floor_colour: RGB
    tile_size: float  # metres; side of the floor's checker tiles
    tile_contrast: float  # grey levels
    texture: float  # amplitude of the smoothed noise, grey levels
    haze_colour: RGB
    haze: float  # 0..1; how strongly distant things fade into the haze colour
    blob_colour: RGB
    blob_fraction: float  # share of the image covered by irregular clutter stains
    blob_alpha: float  # their opacity
    strokes: tuple[Stroke, ...]


@dataclass(frozen=True, eq=False)
class ShapeObject:
    """One flat object facing the camera: its class, outline, look and distance."""

    label: int  # index into DEMO_CLASSES
    center: tuple[float, float]  # (x, y)
    size: float  # diameter of the circle the outline is drawn in, px
    angle: float  # rotation, radians
    outline: np.ndarray  # [N, 2] (x, y) polygon
    hole: np.ndarray | None  # [M, 2] polygon cut out of the outline (rings), else None
    keypoints: np.ndarray  # [K, 2] (x, y) defined points, clockwise from 12 o'clock
    colour: RGB
    shade_angle: float  # direction of the linear shading, radians
    shade_strength: float  # relative brightness change across the object
    texture: float  # amplitude of the surface texture, grey levels
    depth: float  # metres (z distance of the whole card)


@dataclass(frozen=True, eq=False)
class Scene:
    """Everything needed to render one image and its targets; every renderer is a pure function of it."""

    height: int
    width: int
    focal: float  # px; principal point is (width / 2, background.horizon)
    background: Background
    objects: tuple[ShapeObject, ...]  # far to near (painter's order)
    noise_sigma: float  # sensor noise, grey levels
    seed: int  # seeds the textures, the sensor noise and the degradation drawn at render time


# ----------------------------------------------------------------------------------------------------------
# Shapes


def _rotate(points: np.ndarray, angle: float) -> np.ndarray:
    """points: [N, 2] -> [N, 2] rotated by ``angle`` (clockwise on screen, since y points down)."""
    c, s = np.cos(angle), np.sin(angle)
    return points @ np.array([[c, s], [-s, c]])


def _ellipse(aspect: float) -> np.ndarray:
    """[48, 2] points of an ellipse with semi-axes 1 and ``aspect``."""
    t = np.linspace(0.0, 2 * np.pi, _ELLIPSE_POINTS, endpoint=False)
    return np.stack([np.cos(t), aspect * np.sin(t)], axis=1)


def _clockwise_from_top(points: np.ndarray) -> np.ndarray:
    """[K, 2] offsets from the centre -> the same points ordered clockwise starting at 12 o'clock.

    The order is defined by the image alone, so it is learnable, and a horizontal flip maps point k to K-1-k.
    """
    clockwise_from_up = np.mod(np.arctan2(points[:, 0], -points[:, 1]), 2 * np.pi)
    return points[np.argsort(clockwise_from_up, kind="stable")]


def _unit_shape(label: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """A class's outline, hole and keypoints inside the unit circle, before rotation."""
    name = DEMO_CLASSES[label]
    hole = None
    if name in ("ellipse", "ring"):
        aspect = rng.uniform(0.4, 1.0) if name == "ellipse" else rng.uniform(0.7, 1.0)
        outline = _ellipse(aspect)
        keypoints = np.array([[1.0, 0.0], [0.0, aspect], [-1.0, 0.0], [0.0, -aspect]])
        if name == "ring":
            hole = outline * rng.uniform(0.45, 0.65)
    elif name == "rectangle":
        aspect = rng.uniform(0.35, 1.0)
        half_w = 1.0 / np.hypot(1.0, aspect)  # corners on the unit circle
        outline = np.array([[1, 1], [-1, 1], [-1, -1], [1, -1]]) * np.array([half_w, aspect * half_w])
        keypoints = outline
    elif name == "triangle":
        # Jittered equilateral corners keep every angle >= about 35 degrees, so none is a sliver.
        t = np.arange(3) * (2 * np.pi / 3) + rng.uniform(-0.35, 0.35, size=3)
        outline = np.stack([np.cos(t), np.sin(t)], axis=1)
        keypoints = outline
    elif name == "star":
        t = np.arange(10) * (np.pi / 5)
        radius = np.where(np.arange(10) % 2 == 0, 1.0, rng.uniform(0.38, 0.55))
        outline = np.stack([radius * np.cos(t), radius * np.sin(t)], axis=1)
        keypoints = outline[::2]
    else:
        raise ValueError(f"DEMO_CLASSES[{label}] = {name!r} has no shape definition")
    return outline, hole, keypoints


def _polygon_area(points: np.ndarray) -> float:
    """Shoelace area of a polygon [N, 2]."""
    x, y = points[:, 0], points[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))


def _full_area(obj: ShapeObject) -> float:
    """Area of the whole object in px, including parts outside the image or hidden."""
    return _polygon_area(obj.outline) - (_polygon_area(obj.hole) if obj.hole is not None else 0.0)


# ----------------------------------------------------------------------------------------------------------
# Sampling


def _random_colour(rng: np.random.Generator) -> RGB:
    """A colour drawn in HSV so that hue, saturation and brightness all vary."""
    r, g, b = colorsys.hsv_to_rgb(rng.uniform(), rng.uniform(0.2, 1.0), rng.uniform(0.3, 1.0))
    return (round(r * 255), round(g * 255), round(b * 255))


def _floor_row(background: Background, focal: float, depth: float) -> float:
    """Image row where the floor is ``depth`` metres away (floor z = focal * camera_height / (y - horizon))."""
    return background.horizon + focal * background.camera_height / depth


def _sample_background(rng: np.random.Generator, height: int, width: int) -> Background:
    """A random room and its clutter."""
    scale = min(height, width) / _REF_SIZE
    strokes = []
    for _ in range(rng.integers(1, 5)):
        start = rng.uniform((0, 0), (width, height))
        steps = rng.normal(0.0, 40.0 * scale, size=(rng.integers(1, 4), 2))
        strokes.append(Stroke(points=start + np.cumsum(np.vstack([np.zeros((1, 2)), steps]), axis=0),
                              colour=_random_colour(rng), thickness=int(rng.integers(1, 3))))
    grey = rng.uniform(170, 230)
    return Background(
        horizon=rng.uniform(0.25, 0.5) * height,
        camera_height=rng.uniform(1.0, 1.6),
        wall_depth=rng.uniform(9.0, 12.0),
        wall_colour=_random_colour(rng),
        wall_gradient=rng.uniform(-0.3, 0.3),
        floor_colour=_random_colour(rng),
        tile_size=rng.uniform(0.4, 1.0),
        tile_contrast=rng.uniform(5.0, 30.0),
        texture=rng.uniform(6.0, 20.0),
        haze_colour=tuple(int(v) for v in np.clip(grey + rng.normal(0, 10, size=3), 0, 255)),
        haze=rng.uniform(0.15, 0.45),
        blob_colour=_random_colour(rng),
        blob_fraction=rng.uniform(0.0, 0.12),
        blob_alpha=rng.uniform(0.35, 0.75),
        strokes=tuple(strokes),
    )


def _sample_object(rng: np.random.Generator, background: Background, height: int, width: int,
                   focal: float) -> ShapeObject:
    """One object with a uniformly drawn class, log-uniform size, and a depth that matches its size."""
    scale = min(height, width) / _REF_SIZE
    label = int(rng.integers(len(DEMO_CLASSES)))
    size = float(np.exp(rng.uniform(*np.log(_SIZE_RANGE)))) * scale
    depth = float(np.clip(focal * rng.uniform(*_PHYSICAL_SIZE) / size, *_DEPTH_RANGE))
    angle = rng.uniform(0.0, 2 * np.pi)
    outline, hole, keypoints = (None if p is None else _rotate(p, angle) * (size / 2)
                                for p in _unit_shape(label, rng))
    # At most a fifth of the size leaves the frame through the margin: border cuts happen but stay partial.
    margin = 0.3 * size
    # Cards never sink into the floor: the bottom stays above the floor row at the card's own depth.
    lowest = min(height - margin, _floor_row(background, focal, depth) - float(outline[:, 1].max()) - 1.0)
    center = np.array([rng.uniform(margin, width - margin), rng.uniform(margin, lowest)])
    return ShapeObject(
        label=label,
        center=(float(center[0]), float(center[1])),
        size=size,
        angle=float(angle),
        outline=outline + center,
        hole=None if hole is None else hole + center,
        keypoints=_clockwise_from_top(keypoints) + center,
        colour=_random_colour(rng),
        shade_angle=rng.uniform(0.0, 2 * np.pi),
        shade_strength=rng.uniform(0.0, 0.35),
        texture=rng.uniform(4.0, 16.0) if rng.uniform() < 0.5 else 0.0,  # half plain, half textured
        depth=depth,
    )


def sample_scene(rng: np.random.Generator, height: int, width: int,
                 num_objects: tuple[int, int] = (1, 5)) -> Scene:
    """Draw a scene; objects that end up mostly hidden or cut off are dropped, and at least one remains."""
    if height < 32 or width < 32:
        raise ValueError(f"demo scenes need an image of at least 32x32 px, got {height}x{width}")
    focal = float(width)
    background = _sample_background(rng, height, width)
    min_area = _MIN_VISIBLE_AREA * (min(height, width) / _REF_SIZE) ** 2
    while True:
        count = int(rng.integers(num_objects[0], num_objects[1] + 1))
        candidates = [_sample_object(rng, background, height, width, focal) for _ in range(count)]
        candidates.sort(key=lambda o: -o.depth)
        scene = Scene(height=height, width=width, focal=focal, background=background,
                      objects=tuple(candidates), noise_sigma=rng.uniform(1.0, 4.0),
                      seed=int(rng.integers(2**63)))
        visible = np.bincount(render_instance_ids(scene).ravel() + 1, minlength=count + 1)[1:]
        # Dropping an object only uncovers farther ones, so the survivors still pass after this single pass.
        kept = tuple(o for o, v in zip(candidates, visible, strict=True)
                     if v >= min_area and v >= _MIN_VISIBLE_FRACTION * _full_area(o))
        if kept:
            return Scene(height=height, width=width, focal=focal, background=background, objects=kept,
                         noise_sigma=scene.noise_sigma, seed=scene.seed)


# ----------------------------------------------------------------------------------------------------------
# Geometry renderers


def _fill(mask: np.ndarray, polygon: np.ndarray, value: int) -> None:
    """Rasterise a polygon in pixel-edge coordinates into ``mask`` with 1/16 px precision."""
    fixed = np.round((polygon - 0.5) * 16).astype(np.int32)  # cv2 puts pixel centres on integers
    cv2.fillPoly(mask, [fixed], value, lineType=cv2.LINE_8, shift=4)


def object_masks(scene: Scene) -> np.ndarray:
    """Full (unoccluded) masks inside the image: bool [N, H, W], in the order of ``scene.objects``."""
    masks = np.zeros((len(scene.objects), scene.height, scene.width), dtype=np.uint8)
    for mask, obj in zip(masks, scene.objects, strict=True):
        _fill(mask, obj.outline, 1)
        if obj.hole is not None:
            _fill(mask, obj.hole, 0)
    return masks.astype(bool)


def render_instance_ids(scene: Scene) -> np.ndarray:
    """Index of the object seen at each pixel, -1 for background: int32 [H, W]."""
    ids = np.full((scene.height, scene.width), -1, dtype=np.int32)
    for index, mask in enumerate(object_masks(scene)):  # far to near: nearer objects overwrite
        ids[mask] = index
    return ids


def render_visible_masks(scene: Scene) -> np.ndarray:
    """Visible part of every object: bool [N, H, W]."""
    return render_instance_ids(scene)[None] == np.arange(len(scene.objects))[:, None, None]


def render_semantic(scene: Scene) -> np.ndarray:
    """Semantic labels: uint8 [H, W], 0 = background, k + 1 = DEMO_CLASSES[k]."""
    lut = np.array([0] + [o.label + 1 for o in scene.objects], dtype=np.uint8)
    return lut[render_instance_ids(scene) + 1]


def _room_depth_rows(scene: Scene) -> np.ndarray:
    """Depth of the room per image row, metres: float32 [H, 1] (the camera is level, so rows are constant)."""
    bg = scene.background
    rows = np.arange(scene.height, dtype=np.float64) + 0.5 - bg.horizon  # pixel centres below the horizon
    with np.errstate(divide="ignore"):
        floor = np.where(rows > 0, scene.focal * bg.camera_height / rows, np.inf)
    return np.minimum(floor, bg.wall_depth).astype(np.float32)[:, None]


def background_depth(scene: Scene) -> np.ndarray:
    """Depth of the room without objects, metres: float32 [H, W] (floor below the horizon, wall behind)."""
    return np.repeat(_room_depth_rows(scene), scene.width, axis=1)


def render_depth(scene: Scene) -> np.ndarray:
    """Metric z-depth: float32 [H, W]; each object's pixels carry its depth, the rest the room's."""
    lut = np.array([o.depth for o in scene.objects], dtype=np.float32)
    ids = render_instance_ids(scene)
    return np.where(ids >= 0, lut[np.maximum(ids, 0)], background_depth(scene))


def render_keypoints(scene: Scene) -> list[np.ndarray]:
    """Keypoints of every object: float32 [K, 3] (x, y, v) each, in COCO convention.

    Integer x, y are pixel centres; v = 2 visible, 1 inside the image but hidden by a nearer object,
    0 outside the image (then x = y = 0).
    """
    ids = render_instance_ids(scene)
    # A vertex lies on the outline, so its own pixel may fall just outside the mask: look one pixel around.
    padded = np.pad(ids, 1, constant_values=-1)
    result = []
    for index, obj in enumerate(scene.objects):
        points = np.zeros((len(obj.keypoints), 3), dtype=np.float32)
        for k, (x, y) in enumerate(obj.keypoints):
            if not (0 <= x < scene.width and 0 <= y < scene.height):
                continue
            col, row = int(x), int(y)
            seen = bool((padded[row:row + 3, col:col + 3] == index).any())
            points[k] = (x - 0.5, y - 0.5, 2 if seen else 1)
        result.append(points)
    return result


# ----------------------------------------------------------------------------------------------------------
# Appearance renderers


def _smooth_noise(rng: np.random.Generator, height: int, width: int, cells: int) -> np.ndarray:
    """Noise with features about 1/cells of the image: float32 [H, W], roughly unit variance."""
    coarse = rng.standard_normal((cells + 1, cells + 1), dtype=np.float32)
    field = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    return field / max(float(field.std()), 1e-6)


def _fractal_noise(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Three octaves of smoothed noise: float32 [H, W]."""
    return sum(amp * _smooth_noise(rng, height, width, cells) for amp, cells in ((1.0, 4), (0.5, 16), (0.3, 64)))


def _haze_weight(depth: np.ndarray | float, haze: float) -> np.ndarray | float:
    """How much of the haze colour replaces a surface at ``depth`` metres (aerial perspective)."""
    return haze * (1.0 - np.exp(-np.asarray(depth) / 4.0))


def _render_room(scene: Scene, rng: np.random.Generator) -> np.ndarray:
    """Wall, floor, haze and clutter: float32 [H, W, 3]."""
    bg, h, w = scene.background, scene.height, scene.width
    depth = _room_depth_rows(scene)  # [H, 1]
    ys = np.arange(h, dtype=np.float32)[:, None] + 0.5  # [H, 1]
    xs = np.arange(w, dtype=np.float32)[None, :] + 0.5  # [1, W]

    wall = np.array(bg.wall_colour, np.float32) * (1.0 + bg.wall_gradient * (ys / h - 0.5))  # [H, 3]
    # Checker tiles in floor coordinates give the floor a perspective texture gradient.
    floor_x = (xs - w / 2) * depth / scene.focal
    checker = (np.floor(floor_x / bg.tile_size) + np.floor(depth / bg.tile_size)) % 2 * 2 - 1
    floor = np.array(bg.floor_colour, np.float32) + (bg.tile_contrast * checker * np.exp(-depth / 8))[..., None]
    room = np.where((depth >= bg.wall_depth)[..., None], wall[:, None, :], floor)  # [H, W, 3]
    room += bg.texture * _fractal_noise(rng, h, w)[..., None]
    room += 0.3 * bg.texture * np.stack([_smooth_noise(rng, h, w, 8) for _ in range(3)], axis=-1)

    weight = _haze_weight(depth, bg.haze)[..., None]  # [H, 1, 1]
    room = room * (1 - weight) + np.array(bg.haze_colour, np.float32) * weight

    # Ragged, soft-edged stains: crisp round blobs would look like unlabelled ellipses.
    blob_field = _smooth_noise(rng, h, w, 5) + 0.8 * _smooth_noise(rng, h, w, 13)
    blob = (blob_field > np.quantile(blob_field, 1.0 - bg.blob_fraction)).astype(np.float32)
    blob = cv2.GaussianBlur(blob, (0, 0), 3.0 * min(h, w) / _REF_SIZE)[..., None] * bg.blob_alpha
    room = room * (1 - blob) + np.array(bg.blob_colour, np.float32) * blob
    for stroke in bg.strokes:
        cv2.polylines(room, [np.round(stroke.points - 0.5).astype(np.int32)], False, stroke.colour,
                      stroke.thickness, lineType=cv2.LINE_8)
    return room


def render_image(scene: Scene) -> np.ndarray:
    """The clean RGB image (no sensor noise): uint8 [H, W, 3]."""
    rng = np.random.default_rng([scene.seed, _TEXTURE_STREAM])
    image = _render_room(scene, rng)
    surface = _fractal_noise(rng, scene.height, scene.width)
    for obj, mask in zip(scene.objects, object_masks(scene), strict=True):  # far to near
        rows, cols = np.nonzero(mask)
        direction = np.array([np.cos(obj.shade_angle), np.sin(obj.shade_angle)])
        along = ((cols + 0.5 - obj.center[0]) * direction[0] + (rows + 0.5 - obj.center[1]) * direction[1])
        shade = 1.0 + obj.shade_strength * along / (obj.size / 2)
        colour = np.array(obj.colour, np.float32) * shade[:, None] + (obj.texture * surface[rows, cols])[:, None]
        weight = _haze_weight(obj.depth, scene.background.haze)
        image[rows, cols] = colour * (1 - weight) + np.array(scene.background.haze_colour, np.float32) * weight
    image = cv2.GaussianBlur(image, (0, 0), 0.6)  # optics: soft edges instead of staircase ones
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def add_sensor_noise(scene: Scene, image: np.ndarray) -> np.ndarray:
    """Add the scene's mild Gaussian sensor noise to a uint8 [H, W, 3] image."""
    rng = np.random.default_rng([scene.seed, _NOISE_STREAM])
    noisy = image + scene.noise_sigma * rng.standard_normal(image.shape, dtype=np.float32)
    return np.clip(np.round(noisy), 0, 255).astype(np.uint8)


def degrade(scene: Scene, image: np.ndarray) -> np.ndarray:
    """Low-quality copy for restoration: Gaussian blur, half the time a x2 bicubic down/up-scale, then noise.

    image: uint8 [H, W, 3] (the clean render) -> uint8 [H, W, 3]; the same size so one model covers all three.
    """
    rng = np.random.default_rng([scene.seed, _DEGRADE_STREAM])
    out = cv2.GaussianBlur(image.astype(np.float32), (0, 0), rng.uniform(0.5, 1.5))
    if rng.uniform() < 0.5:
        h, w = image.shape[:2]
        small = cv2.resize(out, (w // 2, h // 2), interpolation=cv2.INTER_CUBIC)
        out = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    out += rng.uniform(5.0, 20.0) * rng.standard_normal(out.shape, dtype=np.float32)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)

"""One synthetic photo: a car of some body, colour and view, rusted to a level, on a background."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from corrode import levels
from corrode.synth.backgrounds import BACKGROUNDS, OUTDOOR, STUDIO, cast_shadow, make_background
from corrode.synth.bodies import BODY_TYPES, make_body
from corrode.synth.camera import Camera
from corrode.synth.car import draw_car as paint_car
from corrode.synth.photo_rust import paint_photo_rust
from corrode.synth.raster import Canvas
from corrode.synth.rust import grow_rust, paint_rust, target_fraction, weather_paint

# Paint colours and how often they occur (bright blue is common on purpose: the paper saw blue cars
# lose their colour in the GAN).
COLOURS: dict[str, tuple[int, int, int]] = {
    "white": (232, 233, 235),
    "black": (24, 25, 28),
    "silver": (178, 182, 188),
    "grey": (105, 108, 112),
    "red": (178, 22, 28),
    "bright blue": (18, 92, 222),
    "navy": (22, 36, 84),
    "sky blue": (110, 165, 215),
    "dark green": (24, 76, 44),
    "yellow": (232, 190, 30),
    "orange": (226, 110, 24),
    "beige": (196, 176, 138),
    "maroon": (108, 22, 34),
    "teal": (20, 118, 122),
}
COLOUR_WEIGHTS: dict[str, float] = {
    "white": 2.0,
    "black": 1.5,
    "silver": 1.5,
    "grey": 1.2,
    "red": 1.2,
    "bright blue": 1.6,
    "navy": 0.8,
    "sky blue": 0.6,
    "dark green": 0.6,
    "yellow": 0.5,
    "orange": 0.5,
    "beige": 0.6,
    "maroon": 0.6,
    "teal": 0.5,
}
# How rust looks: `photo` uses photo-scanned rust textures with chipped paint, blisters and run-off
# streaks; `flat` is the original flat orange-brown noise. Both paint exactly the same rust pixels.
RUST_STYLES = ("photo", "flat")
# View name -> (yaw range in degrees, framing). Negative yaw shows the rear.
VIEWS: dict[str, tuple[tuple[float, float], str]] = {
    "side": ((-6.0, 6.0), "full"),
    "front-quarter": ((24.0, 48.0), "full"),
    "rear-quarter": ((-48.0, -24.0), "full"),
    "crop-left": ((-20.0, 20.0), "left"),
    "crop-centre": ((-12.0, 12.0), "centre"),
    "crop-right": ((-20.0, 20.0), "right"),
}
VIEW_WEIGHTS = {
    "side": 0.3,
    "front-quarter": 0.2,
    "rear-quarter": 0.2,
    "crop-left": 0.1,
    "crop-centre": 0.1,
    "crop-right": 0.1,
}
# The background bias the paper ran into: clean cars mostly in studio-like shots, rusty ones outdoors.
STUDIO_SHARE = dict(zip(levels.NAMES, (0.8, 0.15, 0.15, 0.15), strict=True))


@dataclass
class Scene:
    image: np.ndarray  # (H, W, 3) uint8
    mask: np.ndarray  # (H, W) bool: the car's silhouette as drawn, wheels included
    rust_fraction: float  # rust pixels / car pixels, measured on the output
    background: np.ndarray  # (H, W, 3) uint8: the same scene without the car (its shadow included)
    rust: np.ndarray  # (H, W) bool
    level: str
    body: str
    colour: str
    view: str
    background_kind: str
    flipped: bool


def _pick(rng: np.random.Generator, weights: dict[str, float]) -> str:
    names = list(weights)
    p = np.array([weights[n] for n in names], np.float64)
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def choose_background(rng: np.random.Generator, level: str) -> str:
    if rng.random() < STUDIO_SHARE[levels.get(level).name]:
        return STUDIO
    return OUTDOOR[int(rng.integers(len(OUTDOOR)))]


def _camera(
    rng: np.random.Generator, body_length: float, yaw_deg: float, framing: str, size: int, corners: np.ndarray
) -> Camera:
    """A camera that frames the car: whole (`full`) or a partial crop of its left, centre or right."""
    yaw, pitch = np.radians(yaw_deg), np.radians(rng.uniform(4, 13))
    distance = body_length * rng.uniform(2.2, 3.5)
    probe = Camera(yaw, pitch, distance)
    box = probe.project(corners)
    (x0, y0), (x1, y1) = box.min(axis=0), box.max(axis=0)
    width, height = x1 - x0, y1 - y0
    if framing == "full":
        scale = min(size * rng.uniform(0.8, 0.93) / width, size * 0.88 / height)
        cx = size / 2 + rng.uniform(-0.03, 0.03) * size - (x0 + x1) / 2 * scale
        cy = size * rng.uniform(0.52, 0.6) - (y0 + y1) / 2 * scale
    else:
        scale = size * rng.uniform(1.45, 1.9) / width
        if framing == "left":
            cx = size * rng.uniform(0.03, 0.1) - x0 * scale
        elif framing == "right":
            cx = size * rng.uniform(0.9, 0.97) - x1 * scale
        else:
            cx = size / 2 - (x0 + x1) / 2 * scale
        cy = size * rng.uniform(0.5, 0.58) - (y0 + y1) / 2 * scale
    return Camera(yaw, pitch, distance, scale, (cx, cy))


def draw_scene(
    rng: np.random.Generator,
    size: int,
    level: str | int | levels.Level = "none",
    *,
    body: str | None = None,
    colour: str | None = None,
    view: str | None = None,
    yaw: float | None = None,
    background: str | None = None,
    flip: bool | None = None,
    car_seed: int | None = None,
    rust_style: str = "photo",
) -> Scene:
    """Draw one photo. Anything left None is chosen with `rng`; the same rng state gives the same pixels.

    `car_seed` fixes the car itself (body type and proportions, colour, wheels) apart from the rest of the
    scene, so several views of one car can be drawn. `rust_style` (one of RUST_STYLES) changes only how
    the rust looks: the same rng state gives the same rust pixels, mask and background in either style.
    """
    level_name = levels.get(level).name
    if rust_style not in RUST_STYLES:
        raise ValueError(f"unknown rust style {rust_style!r}: use one of {', '.join(RUST_STYLES)}")
    identity = rng if car_seed is None else np.random.default_rng(car_seed)
    body = body or BODY_TYPES[int(identity.integers(len(BODY_TYPES)))]
    colour = colour or _pick(identity, COLOUR_WEIGHTS)
    view = view or _pick(rng, VIEW_WEIGHTS)
    background = background or choose_background(rng, level_name)
    if body not in BODY_TYPES or colour not in COLOURS or view not in VIEWS or background not in BACKGROUNDS:
        raise ValueError(
            f"unknown body/colour/view/background: {body!r}, {colour!r}, {view!r}, {background!r}"
        )
    flip = bool(rng.random() < 0.5) if flip is None else flip
    (yaw_low, yaw_high), framing = VIEWS[view]
    yaw_deg = rng.uniform(yaw_low, yaw_high) if yaw is None else yaw

    shape = make_body(body, identity)
    half_l, half_w = shape.length / 2, shape.width / 2
    height = shape.cabin.points[:, 1].max()
    corners = np.array(
        [[x, y, z] for x in (-half_l, half_l) for y in (0.0, height) for z in (-half_w, half_w)]
    )
    big = size * 2
    camera = _camera(rng, shape.length, yaw_deg, framing, big, corners)
    paint = np.array(COLOURS[colour], np.float64) * identity.uniform(0.94, 1.04)

    canvas = Canvas(big)
    geometry = paint_car(canvas, shape, camera, paint, identity)
    # Down to output size: area averaging gives smooth edges; the mask is where the car covers >= half
    # a pixel, and outside it the image is exactly the background.
    alpha = cv2.resize(canvas.alpha, (size, size), interpolation=cv2.INTER_AREA)
    mask = alpha >= 0.5
    car_pixels = int(np.count_nonzero(mask))

    def shrink_rust(rust_big: np.ndarray) -> np.ndarray:
        small = cv2.resize(rust_big.astype(np.float32), (size, size), interpolation=cv2.INTER_AREA)
        return (small >= 0.5) & mask

    def measure(rust_big: np.ndarray) -> float:
        return np.count_nonzero(shrink_rust(rust_big)) / max(car_pixels, 1)

    rust_big = np.zeros((big, big), bool)
    fraction = target_fraction(rng, level_name)
    if fraction > 0:
        rust_big = grow_rust(canvas, geometry, level_name, fraction, rng, measure)
        clean = canvas.colour.copy() if rust_style == "photo" else None
        weather_paint(canvas, level_name, rng)
        if clean is None:
            paint_rust(canvas, rust_big, rng)
        else:
            paint_photo_rust(canvas, rust_big, rng, clean, paint, geometry.pixels_per_metre)
    colour_small = cv2.resize(canvas.colour, (size, size), interpolation=cv2.INTER_AREA)

    roof_y = camera.project(np.array([[0.0, height, 0.0]]))[0][1] / 2
    ground_y = geometry.footprint[:, 1].max() / 2
    horizon = int(np.clip(roof_y + rng.uniform(-0.05, 0.3) * (ground_y - roof_y), size * 0.08, size * 0.9))
    # Views of one car share its backdrop (the same studio, as Carvana's turntable photos do).
    backdrop = rng if car_seed is None else np.random.default_rng([car_seed, 1])
    scene = make_background(backdrop, background, size, horizon)
    strength = 0.45 if background == STUDIO else rng.uniform(0.5, 0.7)
    cast_shadow(scene, geometry.footprint / 2, [w / 2 for w in geometry.wheels], strength)
    background_image = np.clip(np.round(scene), 0, 255).astype(np.uint8)
    composite = scene * (1 - alpha[..., None]) + colour_small
    image = np.where(mask[..., None], np.clip(np.round(composite), 0, 255).astype(np.uint8), background_image)
    rust = shrink_rust(rust_big)
    rust_fraction = float(np.count_nonzero(rust) / car_pixels) if car_pixels else 0.0
    if flip:
        image, mask, background_image, rust = (
            np.ascontiguousarray(a[:, ::-1]) for a in (image, mask, background_image, rust)
        )
    return Scene(
        image, mask, rust_fraction, background_image, rust, level_name, body, colour, view, background, flip
    )


def draw_car(
    rng: np.random.Generator, size: int, level: str | int | levels.Level = "none", **options
) -> tuple[np.ndarray, np.ndarray, float]:
    """One car photo at `level`: (image (H, W, 3) uint8, mask (H, W) bool, measured rust fraction).

    Options as for `draw_scene` (body, colour, view, yaw, background, flip, car_seed, rust_style).
    """
    scene = draw_scene(rng, size, level, **options)
    return scene.image, scene.mask, scene.rust_fraction

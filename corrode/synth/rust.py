"""Procedural rust: where it grows (seed regions + fractal noise) and how it looks (colour, pits, flakes).

RUST_BANDS is the one place the coverage of each level is defined: the fraction of the car's pixels
(its whole silhouette, glass and tyres included) that are rust.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from corrode import levels
from corrode.synth.car import CarGeometry
from corrode.synth.noise import fractal_noise
from corrode.synth.raster import Canvas

# Per level, in the order of levels.NAMES (none, mild, moderate, severe):
RUST_BANDS: dict[str, tuple[float, float]] = dict(
    zip(
        levels.NAMES,
        (
            (0.0, 0.0),
            (0.02, 0.08),  # mild: starts at wheel arches, sills and door bottoms
            (0.12, 0.25),  # moderate: spreads over doors, wings and hood
            (0.40, 0.70),  # severe: most of the painted body
        ),
        strict=True,
    )
)
# Targets are drawn from the middle of each band so the coverage measured after downsampling stays inside it.
BAND_MARGIN = 0.15
# How far rust wanders from its seed regions: noise weight against distance (metres) from the seeds.
NOISE_WEIGHT = dict(zip(levels.NAMES, (0.0, 0.25, 0.9, 2.5), strict=True))
# How much the remaining paint has faded and gathered grime at each level (0: showroom fresh).
WEATHERING = dict(zip(levels.NAMES, (0.0, 0.06, 0.14, 0.26), strict=True))
GRIME = np.array([118.0, 112.0, 100.0])

DARK_RUST = np.array([72.0, 38.0, 22.0])
ORANGE_RUST = np.array([178.0, 88.0, 36.0])
DEEP_RUST = np.array([42.0, 26.0, 18.0])
BRIGHT_RUST = np.array([205.0, 118.0, 52.0])


def target_fraction(rng: np.random.Generator, level: str) -> float:
    low, high = RUST_BANDS[levels.get(level).name]
    margin = (high - low) * BAND_MARGIN
    return float(rng.uniform(low + margin, high - margin)) if high > 0 else 0.0


def _lower_part(line: np.ndarray, share: float = 0.3) -> np.ndarray:
    """The bottom `share` of a vertical two-point line (pixels, y down); other lines unchanged."""
    if len(line) != 2 or abs(line[1, 1] - line[0, 1]) < abs(line[1, 0] - line[0, 0]):
        return line
    bottom, top = (line[0], line[1]) if line[0, 1] > line[1, 1] else (line[1], line[0])
    return np.array([bottom, bottom + (top - bottom) * share])


def _seed_map(canvas: Canvas, geometry: CarGeometry, level: str) -> np.ndarray:
    seeds = np.zeros((canvas.size, canvas.size), np.uint8)
    width = max(2, int(geometry.pixels_per_metre * 0.05))
    # Door gaps seed rust only near their bottoms, where water collects.
    doors = [_lower_part(door) for door in geometry.doors]
    lines = [*geometry.arches, *doors]
    if geometry.sill is not None:
        lines.append(geometry.sill)
    for line in lines:
        cv2.polylines(seeds, [np.round(line).astype(np.int32)], False, 255, width)
    if levels.get(level).index >= 2 and geometry.hood is not None:  # moderate and worse reach the hood
        cv2.polylines(seeds, [np.round(geometry.hood).astype(np.int32)], True, 255, width)
    return seeds


def grow_rust(
    canvas: Canvas,
    geometry: CarGeometry,
    level: str,
    fraction: float,
    rng: np.random.Generator,
    measure: Callable[[np.ndarray], float] | None = None,
) -> np.ndarray:
    """Choose the rust pixels (bool, canvas size): `fraction` of the car's pixels, on painted body only.

    `measure(rust)` gives the fraction as it will be measured on the output; if given, the amount is
    corrected (a few rounds at most) until that measurement is within a few percent of `fraction`.
    """
    level = levels.get(level).name
    paint = (canvas.paint > 0.5) & (canvas.alpha > 0.5)
    car_pixels = np.count_nonzero(canvas.alpha >= 0.5)
    available = int(np.count_nonzero(paint))
    if fraction <= 0 or available == 0:
        return np.zeros_like(paint)
    ppm = max(geometry.pixels_per_metre, 1.0)
    seeds = _seed_map(canvas, geometry, level)
    distance = cv2.distanceTransform(255 - seeds, cv2.DIST_L2, 3) / ppm
    noise = fractal_noise(rng, paint.shape, scale=max(ppm * 0.6, 4), octaves=5, persistence=0.6)
    priority = -distance + NOISE_WEIGHT[level] * noise
    values = np.sort(priority[paint])[::-1]
    pits_noise = fractal_noise(rng, paint.shape, scale=2.0, octaves=2)
    radius = max(2, int(ppm * 0.06))
    reach = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    wanted = fraction * car_pixels
    rust = np.zeros_like(paint)
    for _ in range(4):
        # Most of it grows from the seeds; a few percent are pits just ahead of the rust front.
        core = int(np.clip(round(wanted * 0.94), 1, available))
        rust = paint & (priority >= values[core - 1])
        ring = cv2.dilate(rust.astype(np.uint8), reach) > 0
        candidates = paint & ~rust & ring
        extra = int(round(wanted)) - core
        if extra > 0 and candidates.any():
            scores = np.sort(pits_noise[candidates])[::-1]
            rust |= candidates & (pits_noise >= scores[min(extra, scores.size) - 1])
        if measure is None:
            break
        measured = measure(rust)
        if abs(measured - fraction) <= 0.04 * fraction or core >= available or measured <= 0:
            break
        wanted *= fraction / measured
    return rust


def rust_box(rust: np.ndarray, pad: int = 3) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1): the bounding box of the rust pixels, `pad` pixels wider, within the canvas."""
    rows, cols = np.flatnonzero(rust.any(axis=1)), np.flatnonzero(rust.any(axis=0))
    y0, y1 = max(rows[0] - pad, 0), min(rows[-1] + pad + 1, rust.shape[0])
    x0, x1 = max(cols[0] - pad, 0), min(cols[-1] + pad + 1, rust.shape[1])
    return int(y0), int(y1), int(x0), int(x1)


def rust_fields(
    canvas: Canvas, rust: np.ndarray, rng: np.random.Generator
) -> tuple[tuple[int, int, int, int], tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The random fields both rust styles draw over the rust's box: fine and coarse noise, specks.

    Both styles take exactly these draws from `rng`, so what is drawn after the rust (the background)
    is the same whichever style paints it.
    """
    box = rust_box(rust)
    shape = (box[1] - box[0], box[3] - box[2])
    size = canvas.size
    fine = fractal_noise(rng, shape, scale=max(size / 80, 2), octaves=3)
    coarse = fractal_noise(rng, shape, scale=max(size / 12, 4), octaves=3)
    specks = rng.random(shape, dtype=np.float32)
    return box, (fine, coarse, specks)


def paint_rust(canvas: Canvas, rust: np.ndarray, rng: np.random.Generator) -> None:
    """Colour the rust pixels in place: mottled orange-brown to dark brown, deep pits, bright flakes,
    and a rim of blistered paint around each patch."""
    if not rust.any():
        return
    (y0, y1, x0, x1), (fine, coarse, specks) = rust_fields(canvas, rust, rng)
    rust = rust[y0:y1, x0:x1]
    t = np.clip(0.55 * fine + 0.6 * coarse - 0.1, 0, 1)[..., None]
    colour = DARK_RUST * (1 - t) + ORANGE_RUST * t
    deep = (coarse < 0.3) | (specks < 0.04)
    colour[deep] = DEEP_RUST * (0.8 + 0.4 * fine[deep, None])
    colour[specks > 0.97] = BRIGHT_RUST
    light = (0.5 + 0.55 * canvas.shade[y0:y1, x0:x1])[..., None]
    colour = np.clip(colour * light, 0, 255)
    # Blistered, lifting paint at the rust's edge: lighter and speckled with rust.
    rim = cv2.dilate(rust.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=2).astype(bool) & ~rust
    rim &= canvas.paint[y0:y1, x0:x1] > 0.5
    alpha = canvas.alpha[y0:y1, x0:x1, None]
    region = canvas.colour[y0:y1, x0:x1]
    region[rim] = region[rim] * 0.75 + (colour[rim] * 0.25 + 30) * alpha[rim]
    region[rust] = (colour * alpha)[rust]


def weather_paint(canvas: Canvas, level: str, rng: np.random.Generator) -> None:
    """Fade the paint towards a dull grey in blotches, more at higher levels (the car looks neglected)."""
    amount = WEATHERING[levels.get(level).name]
    paint = canvas.paint > 0.5
    if amount <= 0 or not paint.any():
        return
    rows, cols = np.flatnonzero(paint.any(axis=1)), np.flatnonzero(paint.any(axis=0))
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    blotches = fractal_noise(rng, (y1 - y0, x1 - x0), scale=max(canvas.size / 10, 4), octaves=4)
    # Grime gathers low on the body.
    low = np.linspace(0, 1, y1 - y0, dtype=np.float32)[:, None] ** 2
    weight = (amount * (0.4 + 1.2 * blotches) * (0.7 + 0.6 * low) * paint[y0:y1, x0:x1])[..., None]
    alpha = canvas.alpha[y0:y1, x0:x1, None]
    shade = (0.55 + 0.45 * canvas.shade[y0:y1, x0:x1])[..., None]
    region = canvas.colour[y0:y1, x0:x1]
    region *= 1 - weight
    region += GRIME * shade * alpha * weight

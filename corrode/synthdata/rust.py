"""Procedural rust: where it grows (seed regions + fractal noise) and how it looks (colour, pits, flakes).

RUST_BANDS is the one place the coverage of each level is defined: the fraction of the car's pixels
(its whole silhouette, glass and tyres included) that are rust.
"""

from __future__ import annotations

import cv2
import numpy as np

from corrode import levels
from corrode.synthdata.car import CarGeometry
from corrode.synthdata.noise import fractal_noise
from corrode.synthdata.raster import Canvas

RUST_BANDS: dict[str, tuple[float, float]] = {
    "none": (0.0, 0.0),
    "mild": (0.02, 0.08),  # starts at wheel arches, sills and door bottoms
    "moderate": (0.12, 0.25),  # spreads over doors, wings and hood
    "severe": (0.40, 0.70),  # most of the painted body
}
# Targets are drawn from the middle of each band so the coverage measured after downsampling stays inside it.
BAND_MARGIN = 0.15
# How far rust wanders from its seed regions: noise weight against distance (metres) from the seeds.
NOISE_WEIGHT = {"mild": 0.25, "moderate": 0.9, "severe": 2.5}

DARK_RUST = np.array([72.0, 38.0, 22.0])
ORANGE_RUST = np.array([178.0, 88.0, 36.0])
DEEP_RUST = np.array([42.0, 26.0, 18.0])
BRIGHT_RUST = np.array([205.0, 118.0, 52.0])


def target_fraction(rng: np.random.Generator, level: str) -> float:
    low, high = RUST_BANDS[levels.get(level).name]
    margin = (high - low) * BAND_MARGIN
    return float(rng.uniform(low + margin, high - margin)) if high > 0 else 0.0


def _seed_map(canvas: Canvas, geometry: CarGeometry, level: str) -> np.ndarray:
    seeds = np.zeros((canvas.size, canvas.size), np.uint8)
    width = max(2, int(geometry.pixels_per_metre * 0.05))
    lines = [*geometry.arches, *geometry.doors]
    if geometry.sill is not None:
        lines.append(geometry.sill)
    for line in lines:
        cv2.polylines(seeds, [np.round(line).astype(np.int32)], False, 255, width)
    if level != "mild" and geometry.hood is not None:
        cv2.polylines(seeds, [np.round(geometry.hood).astype(np.int32)], True, 255, width)
    return seeds


def grow_rust(
    canvas: Canvas, geometry: CarGeometry, level: str, fraction: float, rng: np.random.Generator
) -> np.ndarray:
    """Choose the rust pixels (bool, canvas size): `fraction` of the car's pixels, on painted body only."""
    level = levels.get(level).name
    paint = (canvas.paint > 0.5) & (canvas.alpha > 0.5)
    wanted = int(round(fraction * np.count_nonzero(canvas.alpha >= 0.5)))
    available = int(np.count_nonzero(paint))
    if wanted <= 0 or available == 0:
        return np.zeros_like(paint)
    seeds = _seed_map(canvas, geometry, level)
    distance = cv2.distanceTransform(255 - seeds, cv2.DIST_L2, 3) / max(geometry.pixels_per_metre, 1.0)
    ppm = geometry.pixels_per_metre
    noise = fractal_noise(rng, paint.shape, scale=max(ppm * 0.6, 4), octaves=5, persistence=0.6)
    priority = -distance + NOISE_WEIGHT[level] * noise
    values = priority[paint]
    # Keep a few percent for pitting ahead of the rust front.
    core = min(int(wanted * 0.94), available)
    threshold = np.partition(values, available - core)[available - core] if core > 0 else np.inf
    rust = paint & (priority >= threshold)
    ring = cv2.dilate(rust.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=max(2, int(ppm * 0.06)))
    pits_noise = fractal_noise(rng, paint.shape, scale=2.0, octaves=2)
    candidates = paint & ~rust & (ring > 0)
    extra = wanted - int(np.count_nonzero(rust))
    if extra > 0 and candidates.any():
        scores = pits_noise[candidates]
        keep = min(extra, scores.size)
        cut = np.partition(scores, scores.size - keep)[scores.size - keep]
        rust |= candidates & (pits_noise >= cut)
    return rust


def paint_rust(canvas: Canvas, rust: np.ndarray, rng: np.random.Generator) -> None:
    """Colour the rust pixels in place: mottled orange-brown to dark brown, deep pits, bright flakes,
    and a rim of blistered paint around each patch."""
    if not rust.any():
        return
    shape = rust.shape
    size = canvas.size
    fine = fractal_noise(rng, shape, scale=max(size / 80, 2), octaves=3)
    coarse = fractal_noise(rng, shape, scale=max(size / 12, 4), octaves=3)
    specks = rng.random(shape, dtype=np.float32)
    t = np.clip(0.55 * fine + 0.6 * coarse - 0.1, 0, 1)[..., None]
    colour = DARK_RUST * (1 - t) + ORANGE_RUST * t
    deep = (coarse < 0.3) | (specks < 0.04)
    colour[deep] = DEEP_RUST * (0.8 + 0.4 * fine[deep, None])
    colour[specks > 0.97] = BRIGHT_RUST
    light = (0.5 + 0.55 * canvas.shade)[..., None]
    colour = np.clip(colour * light, 0, 255)
    # Blistered, lifting paint at the rust's edge: lighter and speckled with rust.
    rim = cv2.dilate(rust.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=2).astype(bool) & ~rust
    rim &= canvas.paint > 0.5
    alpha = canvas.alpha[..., None]
    canvas.colour[rim] = canvas.colour[rim] * 0.75 + (colour[rim] * 0.25 + 30) * alpha[rim]
    canvas.colour[rust] = (colour * alpha)[rust]

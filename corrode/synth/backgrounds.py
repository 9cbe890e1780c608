"""Backgrounds at output size: a Carvana-like studio, and textured outdoor scenes; the car's shadow."""

from __future__ import annotations

import cv2
import numpy as np

from corrode.synth.noise import fractal_noise

STUDIO = "studio"
OUTDOOR: tuple[str, ...] = ("grass", "gravel", "asphalt", "foliage", "sky")
BACKGROUNDS: tuple[str, ...] = (STUDIO, *OUTDOOR)


def _vertical(size: int, stops: list[tuple[float, tuple[float, float, float]]]) -> np.ndarray:
    ys = np.linspace(0, 1, size)
    positions = [p for p, _ in stops]
    column = np.stack([np.interp(ys, positions, [c[i] for _, c in stops]) for i in range(3)], axis=1)
    return np.repeat(column[:, None, :], size, axis=1).astype(np.float32)


def _studio(rng: np.random.Generator, size: int, horizon: float) -> np.ndarray:
    tint = rng.uniform(-3, 3, 3)
    top = 246 + rng.uniform(-8, 6)
    h = horizon / size
    image = _vertical(
        size, [(0.0, (top,) * 3), (h, (top - 16,) * 3), (h + 0.04, (top - 26,) * 3), (1.0, (top - 44,) * 3)]
    )
    # A faint vignette, as under studio lights.
    ys, xs = np.mgrid[0:size, 0:size] / size
    image *= (1 - 0.07 * ((xs - 0.5) ** 2 + (ys - 0.4) ** 2) * 2)[..., None]
    return image + tint


def _sky(rng: np.random.Generator, size: int, horizon: int) -> np.ndarray:
    top = np.array([rng.uniform(60, 110), rng.uniform(120, 160), rng.uniform(190, 235)])
    low = np.array([rng.uniform(180, 215), rng.uniform(200, 225), rng.uniform(220, 240)])
    h = max(horizon, 1) / size
    image = _vertical(size, [(0.0, tuple(top)), (h, tuple(low)), (1.0, tuple(low))])
    clouds = fractal_noise(rng, (size, size), scale=size / 3, octaves=5, stretch=2.5)
    amount = np.clip((clouds - rng.uniform(0.45, 0.7)) * 3, 0, 1)[..., None]
    return image * (1 - amount) + np.array([242.0, 244.0, 248.0]) * amount


def _treeline(rng: np.random.Generator, image: np.ndarray, horizon: int, height: float) -> None:
    """Trees and bushes along the horizon: rounded crowns of varied size, mottled dark greens."""
    size = image.shape[0]
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    ridge = fractal_noise(rng, (1, size), scale=max(size / 10, 2), octaves=3)
    bushes = horizon - height * (0.12 + 0.3 * ridge)
    inside = (ys <= horizon + 1) & (ys >= bushes)  # a band of low bushes with an uneven top
    count = int(rng.integers(10, 26))
    for x, radius, lift in zip(
        rng.uniform(-0.1, 1.1, count) * size,
        rng.uniform(0.05, 0.13, count) * size,
        rng.uniform(0.2, 1.0, count) * height,
        strict=True,
    ):
        y = horizon - lift + radius
        squash = rng.uniform(0.8, 1.2)
        inside |= ((xs - x) ** 2 + ((ys - y) * squash) ** 2 <= radius**2) & (ys <= horizon + 1)
        # Crowns stand on the bushes: fill between a crown and the horizon under its middle part.
        inside |= (np.abs(xs - x) <= radius * 0.9) & (ys >= y) & (ys <= horizon + 1)
    edge = fractal_noise(rng, (size, size), scale=max(size / 60, 2), octaves=2)
    inside &= ~((edge < 0.25) & ~cv2.erode(inside.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool))
    tops = np.where(inside.any(axis=0), inside.argmax(axis=0), horizon).astype(np.float32)
    leaves = fractal_noise(rng, (size, size), scale=max(size / 50, 2), octaves=4)
    clumps = fractal_noise(rng, (size, size), scale=max(size / 12, 3), octaves=2)
    base = np.array([rng.uniform(35, 65), rng.uniform(65, 100), rng.uniform(25, 45)])
    depth = np.clip((ys - tops[None, :]) / max(height, 1.0), 0, 1)[..., None]  # darker lower in the foliage
    colour = base * (0.5 + 0.7 * leaves[..., None]) * (0.75 + 0.5 * clumps[..., None]) * (1.1 - 0.45 * depth)
    image[inside] = colour[inside]


def _ground(rng: np.random.Generator, kind: str, size: int) -> np.ndarray:
    shape = (size, size)
    if kind in ("grass", "foliage"):
        base = np.array([rng.uniform(55, 95), rng.uniform(100, 140), rng.uniform(30, 55)])
        blades = fractal_noise(rng, shape, scale=max(size / 64, 2), octaves=3, stretch=0.3)
        patches = fractal_noise(rng, shape, scale=size / 4, octaves=3)
        return base * (0.6 + 0.55 * blades[..., None]) * (0.8 + 0.35 * patches[..., None])
    if kind == "gravel":
        base = np.array([rng.uniform(135, 170)] * 3) + rng.uniform(-5, 12, 3) * np.array([1.0, 0.8, 0.3])
        stones = fractal_noise(rng, shape, scale=max(size / 90, 1.5), octaves=2)
        speck = rng.random(shape, dtype=np.float32)
        shade = 0.7 + 0.5 * stones + 0.25 * (speck > 0.93) - 0.25 * (speck < 0.06)
        return base * shade[..., None]
    # asphalt, and the ground under a mostly-sky view
    base = np.array([rng.uniform(70, 100)] * 3)
    grain = fractal_noise(rng, shape, scale=max(size / 120, 1.5), octaves=2)
    stains = fractal_noise(rng, shape, scale=size / 3, octaves=3)
    image = base * (0.8 + 0.35 * grain[..., None]) * (0.85 + 0.25 * stains[..., None])
    if rng.random() < 0.6:  # a faded painted line
        y = int(size * rng.uniform(0.85, 0.97))
        image[y : y + max(2, size // 60)] = image[y : y + max(2, size // 60)] * 0.4 + 140
    return image


def make_background(rng: np.random.Generator, kind: str, size: int, horizon: int) -> np.ndarray:
    """An `(size, size, 3)` float background of `kind`; ground starts at pixel row `horizon`."""
    if kind == STUDIO:
        return np.clip(_studio(rng, size, horizon), 0, 255)
    if kind == "sky":
        horizon = max(horizon, int(size * 0.7))
    sky = _sky(rng, size, horizon)
    ground_kind = {"foliage": "grass", "sky": str(rng.choice(["asphalt", "grass"]))}.get(kind, kind)
    ground = _ground(rng, ground_kind, size)
    # Ground fades towards the horizon (haze) and its texture reads as farther away there.
    ys = np.arange(size)[:, None, None]
    haze = np.clip(1 - (ys - horizon) / (0.35 * size), 0, 1) * 0.35
    ground = ground * (1 - haze) + np.array([185.0, 190.0, 195.0]) * haze
    image = np.where(ys >= horizon, ground, sky)
    if kind == "foliage":
        _treeline(rng, image, horizon, size * rng.uniform(0.35, 0.6))
    elif kind != "sky" or rng.random() < 0.5:
        _treeline(rng, image, horizon, size * rng.uniform(0.04, 0.14))
    return np.clip(image, 0, 255).astype(np.float32)


def cast_shadow(
    background: np.ndarray, footprint: np.ndarray, wheels: list[np.ndarray], strength: float
) -> None:
    """Darken `background` in place under the car: a soft footprint shadow and darker wheel contacts."""
    size = background.shape[0]
    layer = np.zeros((size, size), np.uint8)
    centre = footprint.mean(axis=0)
    spread = centre + (footprint - centre) * np.array([1.04, 1.25])
    cv2.fillPoly(layer, [np.round(spread * 16).astype(np.int32)], 255, lineType=cv2.LINE_AA, shift=4)
    contact = np.zeros_like(layer)
    radius = max(2, int(size * 0.035))
    for x, y in wheels:
        cv2.ellipse(contact, (int(x), int(y)), (radius, max(1, radius // 3)), 0, 0, 360, 255, -1, cv2.LINE_AA)
    sigma = max(1.0, size * 0.02)
    soft = cv2.GaussianBlur(layer.astype(np.float32) / 255, (0, 0), sigma)
    tight = cv2.GaussianBlur(contact.astype(np.float32) / 255, (0, 0), sigma / 3)
    dark = np.clip(strength * soft + 0.5 * tight, 0, 0.85)
    background *= (1 - dark)[..., None]

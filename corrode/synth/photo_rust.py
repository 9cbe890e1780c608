"""Photographic rust: the `photo` rust style, painted inside exactly the pixels `grow_rust` chose.

Each patch of rust (a connected region of the rust mask) gets its own crop of a photo-scanned rust
texture at a random scale, rotation and tint, lit by the car's own shading. Around it the paint is
chipped (a thin lifted rim), blistered (small raised bumps), and below large patches it carries
run-off streaks. Rim, blisters and streaks lie on paint outside the rust mask: they change how the
paint looks, never which pixels are rust, so the masks and coverage are the same as the flat style's.
"""

from __future__ import annotations

import hashlib

import cv2
import numpy as np

from corrode.synth.noise import fractal_noise
from corrode.synth.raster import Canvas
from corrode.synth.rust import rust_box, rust_fields
from corrode.synth.textures import Texture, load_textures, sample_texture

LUMA = np.array([0.299, 0.587, 0.114], np.float32)
# Fresh oxide at a patch's advancing front, paint primer under a chipped edge, run-off stain.
FRONT = np.array([176.0, 86.0, 34.0], np.float32)
PRIMER = np.array([196.0, 192.0, 182.0], np.float32)
STAIN = np.array([168.0, 98.0, 42.0], np.float32)
# Patches get their own texture crop up to this many; smaller patches and pits share one.
MAX_LAYERS = 8
# Sizes in metres on the car (the canvas knows its pixels per metre).
TEXTURE_METRES = (0.15, 0.4)  # the side of one texture tile
MOTTLE_METRES = 0.3  # the size of the blooms where one texture gives way to another
OWN_CROP_METRES = 0.1  # a patch at least this size squared gets its own crop
STREAK_PATCH_METRES = 0.22  # patches at least this size squared drip run-off streaks
STREAK_METRES = (0.15, 0.45)
BLISTER_REACH_METRES = 0.035  # blisters sit within this distance of a patch's edge
BLISTER_METRES = 0.008  # a blister's radius
RIM_METRES = 0.006  # the chipped, lifted paint rim
PATCH_METRES = 0.03  # smaller rust spots are pits: no rim, no blisters


# Bit generators that can jump ahead without being advanced themselves.
JUMPABLE = (np.random.PCG64, np.random.PCG64DXSM, np.random.MT19937, np.random.Philox)


def _side_stream(rng: np.random.Generator) -> np.random.Generator:
    """A generator independent of `rng`, made without taking a draw from it."""
    bit_generator = rng.bit_generator
    if isinstance(bit_generator, JUMPABLE):
        return np.random.Generator(bit_generator.jumped())
    digest = hashlib.sha256(repr(bit_generator.state).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "little"))


def _disk(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def _lighting(
    clean: np.ndarray, alpha: np.ndarray, shade: np.ndarray, paint_colour: np.ndarray
) -> np.ndarray:
    """Light falling on each pixel, from the clean render: the face's shading times the panel's own
    gradient (its luminance against the flat paint's), softened because rust is matte."""
    luminance = (clean @ LUMA) / np.maximum(alpha, 1e-3)
    reference = float(paint_colour @ LUMA) * np.maximum(shade, 0.05)
    ratio = luminance / np.maximum(reference, 1.0)
    # Far off the paint's own luminance (bumpers, trim drawn as plastic): only the face's shading counts.
    detail = np.where((ratio > 0.45) & (ratio < 2.2), ratio, 1.0)
    detail = np.clip(detail, 0.6, 1.5) ** 0.7
    return ((0.3 + 0.75 * shade) * detail).astype(np.float32)


def paint_photo_rust(
    canvas: Canvas,
    rust: np.ndarray,
    rng: np.random.Generator,
    clean: np.ndarray,
    paint_colour: np.ndarray,
    pixels_per_metre: float,
) -> None:
    """Paint the rust pixels (bool, canvas size) in place with photographed rust.

    `clean` is the canvas colour before any weathering or rust (its shading lights the rust);
    `paint_colour` the car's flat paint RGB. Takes the same draws from `rng` as the flat style.
    """
    if not rust.any():
        return
    (fy0, fy1, fx0, fx1), (fine, coarse, specks) = rust_fields(canvas, rust, rng)
    # Everything else this style draws comes from its own stream, leaving `rng` where flat leaves it.
    local = _side_stream(rng)
    ppm = max(float(pixels_per_metre), 1.0)
    reach = max(3, round(ppm * BLISTER_REACH_METRES))
    longest = max(4, round(ppm * STREAK_METRES[1]))
    y0, y1, x0, x1 = rust_box(rust, reach)
    y1 = min(y1 + longest, canvas.size)
    shape = (y1 - y0, x1 - x0)
    inner = (slice(fy0 - y0, fy1 - y0), slice(fx0 - x0, fx1 - x0))

    def place(field: np.ndarray, fill: float) -> np.ndarray:
        out = np.full(shape, fill, np.float32)
        out[inner] = field
        return out

    fine, coarse, specks = place(fine, 0.5), place(coarse, 0.5), place(specks, 0.5)
    rust = rust[y0:y1, x0:x1]
    alpha = canvas.alpha[y0:y1, x0:x1]
    paint = (canvas.paint[y0:y1, x0:x1] > 0.5) & ~rust
    light = _lighting(clean[y0:y1, x0:x1], alpha, canvas.shade[y0:y1, x0:x1], paint_colour)
    region = canvas.colour[y0:y1, x0:x1]

    count, labels, stats, _ = cv2.connectedComponentsWithStats(rust.astype(np.uint8), connectivity=8)
    areas = stats[:, cv2.CC_STAT_AREA].astype(np.float64)
    areas[0] = 0  # label 0 is everything that is not rust

    colour = _texture_patches(rust, labels, areas, ppm, local)
    # Old rust in a patch's middle is darker and pitted; the advancing front is fresh, brighter oxide.
    inside = cv2.distanceTransform(rust.astype(np.uint8), cv2.DIST_L2, 3)
    depth = np.clip(inside / (ppm * 0.15), 0, 1)
    front = np.exp(-inside / max(ppm * 0.015, 1.0))[..., None]
    colour *= (1 - 0.25 * depth * (1.2 - coarse))[..., None]
    colour = colour * (1 - 0.3 * front) + FRONT * 0.3 * front
    # Pits: small, where fine noise dips in the patch's older parts, plus single specks.
    pits = ((fine < 0.18) & (depth > 0.3)) | (specks < 0.03)
    colour[pits] *= 0.6
    colour[specks > 0.985] *= 1.35
    # Right at the edge the lifted paint casts a thin shadow onto the rust.
    colour[inside <= 1.5] *= 0.7
    colour = np.clip(colour * light[..., None], 0, 255)

    _streaks(region, rust, paint, labels, areas, alpha, light, ppm, local)
    # Rims and blisters belong to patches; the lone pits ahead of a rust front are bare dots.
    patches = rust & (areas >= (ppm * PATCH_METRES) ** 2)[labels]
    chipped = _rim(region, patches, paint, alpha, light, ppm, local)
    _blisters(region, patches, paint & ~chipped, alpha, light, ppm, reach, local)
    region[rust] = (colour * alpha[..., None])[rust]


def _crop(texture: Texture, shape: tuple[int, int], ppm: float, rng: np.random.Generator) -> np.ndarray:
    """A random crop of `texture`: random tile size, turn, mirror and offset."""
    metres = rng.uniform(*TEXTURE_METRES)
    if texture.directional:
        angle = rng.uniform(-0.2, 0.2) + (np.pi if rng.random() < 0.5 else 0.0)
    else:
        angle = rng.uniform(0, 2 * np.pi)
    offset = (rng.uniform(0, texture.side), rng.uniform(0, texture.side))
    mirror = bool(rng.random() < 0.5)
    return sample_texture(texture, shape, ppm * metres / texture.side, angle, offset, mirror)


def _texture_patches(
    rust: np.ndarray, labels: np.ndarray, areas: np.ndarray, ppm: float, rng: np.random.Generator
) -> np.ndarray:
    """(H, W, 3) float32 rust colour: one texture crop per large patch, one shared by the rest."""
    textures = load_textures()
    own = np.flatnonzero(areas >= (ppm * OWN_CROP_METRES) ** 2)
    own = own[np.argsort(-areas[own], kind="stable")][: MAX_LAYERS - 1]
    lookup = np.zeros(len(areas), np.int32)
    lookup[own] = np.arange(1, len(own) + 1)
    layer_of = lookup[labels]
    colour = np.zeros((*rust.shape, 3), np.float32)
    for layer in range(len(own) + 1):
        where = rust & (layer_of == layer)
        if not where.any():
            continue
        rows, cols = np.flatnonzero(where.any(axis=1)), np.flatnonzero(where.any(axis=0))
        box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
        shape = (rows[-1] + 1 - rows[0], cols[-1] + 1 - cols[0])
        # Two textures mottled together at a larger scale: blooms of one kind of rust in another.
        first, second = rng.choice(len(textures), 2, replace=False)
        mix = fractal_noise(rng, shape, scale=max(ppm * MOTTLE_METRES, 4.0), octaves=3)
        mix = np.clip((mix - 0.35) / 0.3, 0, 1)[..., None]
        sample = _crop(textures[int(first)], shape, ppm, rng) * (1 - mix)
        sample += _crop(textures[int(second)], shape, ppm, rng) * mix
        # A tint per patch: some redder, some browner, some brighter.
        tint = rng.uniform(0.88, 1.15) * np.array([1.0, rng.uniform(0.9, 1.08), rng.uniform(0.85, 1.1)])
        patch = colour[box]
        patch[where[box]] = (sample * tint.astype(np.float32))[where[box]]
    return colour


def _streaks(
    region: np.ndarray,
    rust: np.ndarray,
    paint: np.ndarray,
    labels: np.ndarray,
    areas: np.ndarray,
    alpha: np.ndarray,
    light: np.ndarray,
    ppm: float,
    rng: np.random.Generator,
) -> None:
    """Run-off: rust-coloured stains dripping down the paint from the lower edge of large patches."""
    large = areas >= (ppm * STREAK_PATCH_METRES) ** 2
    if not large.any():
        return
    below = np.zeros_like(rust)
    below[:-1] = rust[1:]
    seeds = rust & ~below & large[labels]
    if not seeds.any():
        return
    columns = fractal_noise(rng, (2, rust.shape[1]), scale=max(ppm * 0.03, 2.0), octaves=2)[0]
    strength = np.clip((columns - 0.5) / 0.25, 0, 1) * rng.uniform(0.6, 1.0)
    length = max(3, round(ppm * rng.uniform(*STREAK_METRES)))
    decay = np.exp(-np.arange(length, dtype=np.float32) / (length * 0.35))
    # Correlating with the reversed decay, anchored at its end, smears each seed downwards only.
    kernel = decay[::-1].reshape(-1, 1).copy()
    seed_field = seeds.astype(np.float32) * strength[None, :].astype(np.float32)
    stain = cv2.filter2D(seed_field, -1, kernel, anchor=(0, length - 1), borderType=cv2.BORDER_CONSTANT)
    stain = cv2.GaussianBlur(np.clip(stain, 0, 1), (3, 1), 0)
    weight = (0.6 * stain * paint)[..., None]
    region *= 1 - weight
    region += (STAIN * light[..., None] * alpha[..., None]) * weight


def _rim(
    region: np.ndarray,
    rust: np.ndarray,
    paint: np.ndarray,
    alpha: np.ndarray,
    light: np.ndarray,
    ppm: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Paint lifted and chipped at each patch's edge: an irregular, lighter rim where primer shows."""
    radius = max(1, round(ppm * RIM_METRES))
    ring = (cv2.dilate(rust.astype(np.uint8), _disk(radius)) > 0) & paint
    chips = fractal_noise(rng, rust.shape, scale=max(ppm * 0.02, 2.0), octaves=2)
    ring &= chips > 0.35
    # Lifted paint catches the light and shows primer at its broken edge.
    lifted = PRIMER * light[..., None] * alpha[..., None]
    region[ring] = np.minimum(region[ring] * 1.15, 255) * 0.6 + lifted[ring] * 0.4
    return ring


def _blisters(
    region: np.ndarray,
    rust: np.ndarray,
    paint: np.ndarray,
    alpha: np.ndarray,
    light: np.ndarray,
    ppm: float,
    reach: int,
    rng: np.random.Generator,
) -> None:
    """Small raised bubbles in the paint near each patch's edge, lit from above; a few have burst."""
    band = (cv2.dilate(rust.astype(np.uint8), _disk(reach)) > 0) & paint
    candidates = np.flatnonzero(band)
    if candidates.size == 0:
        return
    edge = (cv2.dilate(rust.astype(np.uint8), _disk(1)) > 0) & ~rust
    count = min(int(np.count_nonzero(edge) * 0.02) + 1, 300)
    # Most sit right at the edge, fewer further out.
    distance = cv2.distanceTransform((~rust).astype(np.uint8), cv2.DIST_L2, 3).ravel()[candidates]
    weights = np.exp(-3.0 * distance / reach)
    picks = rng.choice(candidates, count, p=weights / weights.sum())
    ys, xs = np.divmod(picks, rust.shape[1])
    radii = np.maximum(1.0, ppm * BLISTER_METRES * rng.uniform(0.6, 1.5, count))
    bumps = np.zeros(rust.shape, np.float32)
    for x, y, r in zip(xs, ys, radii, strict=True):
        cv2.circle(bumps, (int(x), int(y)), int(round(r)), 1.0, -1, cv2.LINE_AA)
    height = cv2.GaussianBlur(bumps, (0, 0), max(float(radii.mean()) * 0.5, 0.6))
    # y grows downwards: a bump's upper side (height rising downwards) faces the light.
    slope = cv2.Sobel(height, cv2.CV_32F, 0, 1, ksize=3) / 4
    relief = np.clip(1 + 1.5 * slope, 0.65, 1.4)[..., None]
    region[band] *= relief[band]
    # A burst blister shows a dot of fresh rust; it is a pixel at most, so the rust mask ignores it.
    burst = rng.random(count) < 0.25
    for x, y in zip(xs[burst], ys[burst], strict=True):
        centre = (int(y), int(x))
        if paint[centre]:
            region[centre] = FRONT * 0.6 * light[centre] * alpha[centre]

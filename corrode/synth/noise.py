"""Fractal value noise: the texture behind rust, grass, gravel, asphalt, clouds and foliage."""

from __future__ import annotations

import cv2
import numpy as np


def fractal_noise(
    rng: np.random.Generator,
    shape: tuple[int, int],
    *,
    scale: float = 32.0,
    octaves: int = 4,
    persistence: float = 0.5,
    stretch: float = 1.0,
) -> np.ndarray:
    """Noise in [0, 1] of `shape` (H, W): `octaves` layers of smoothly upsampled random grids.

    `scale` is the size in pixels of the coarsest feature; `stretch` > 1 makes features wider than tall.
    """
    height, width = shape
    total = np.zeros(shape, np.float32)
    amplitude, norm, cell = 1.0, 0.0, float(scale)
    for _ in range(octaves):
        grid_h = max(2, int(np.ceil(height / cell)) + 1)
        grid_w = max(2, int(np.ceil(width / (cell * stretch))) + 1)
        grid = rng.random((grid_h, grid_w), dtype=np.float32)
        total += amplitude * cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
        norm += amplitude
        amplitude *= persistence
        cell = max(1.0, cell / 2)
    total /= norm
    low, high = float(total.min()), float(total.max())
    return (total - low) / max(high - low, 1e-6)

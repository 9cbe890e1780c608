"""The 2x drawing canvas: premultiplied colour, coverage (the silhouette), painted-body and shading layers.

Everything is painted with antialiased polygons into a canvas twice the output size and averaged
down later, so edges are smooth while the silhouette (the mask) stays exactly what was drawn.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

# Sub-pixel precision for cv2 polygon drawing (coordinates are multiplied by 2**SHIFT).
SHIFT = 4
Colour = tuple[float, float, float] | np.ndarray
# A fill is a flat colour or a function (xs, ys) -> (h, w, 3) colours for the pixels of a bounding box.
Fill = Colour | Callable[[np.ndarray, np.ndarray], np.ndarray]


class Canvas:
    """Layers of a car drawn at 2x: `colour` (premultiplied RGB 0..255), `alpha`, `paint`, `shade`."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.colour = np.zeros((size, size, 3), np.float32)
        self.alpha = np.zeros((size, size), np.float32)
        self.paint = np.zeros((size, size), np.float32)  # 1 where painted body shows (rust can grow there)
        self.shade = np.zeros((size, size), np.float32)  # lighting factor of the paint, kept for rust

    def coverage(self, points: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int, int]] | None:
        """Antialiased coverage in [0, 1] of a polygon over its clipped bounding box (x0, y0, x1, y1)."""
        points = np.asarray(points, np.float64)
        x0 = max(int(np.floor(points[:, 0].min())) - 1, 0)
        y0 = max(int(np.floor(points[:, 1].min())) - 1, 0)
        x1 = min(int(np.ceil(points[:, 0].max())) + 2, self.size)
        y1 = min(int(np.ceil(points[:, 1].max())) + 2, self.size)
        if x1 <= x0 or y1 <= y0:
            return None
        box = np.zeros((y1 - y0, x1 - x0), np.uint8)
        shifted = np.round((points - (x0, y0)) * (1 << SHIFT)).astype(np.int32)
        cv2.fillPoly(box, [shifted], 255, lineType=cv2.LINE_AA, shift=SHIFT)
        return box.astype(np.float32) / 255.0, (x0, y0, x1, y1)

    def fill(
        self,
        points: np.ndarray,
        fill: Fill,
        *,
        paint: bool = False,
        shade: float = 0.0,
        opacity: float = 1.0,
        clip_to_car: bool = False,
    ) -> None:
        """Paint a polygon over the car layers.

        `paint` marks it as painted body (where rust may grow) or, if False, as something rust
        never covers (glass, tyres, lights). `clip_to_car` draws only where the car already is, so a
        decal never grows the silhouette.
        """
        found = self.coverage(points)
        if found is None:
            return
        cover, (x0, y0, x1, y1) = found
        cover *= opacity
        if clip_to_car:
            cover *= self.alpha[y0:y1, x0:x1]
        if not cover.any():
            return
        if callable(fill):
            xs, ys = np.meshgrid(np.arange(x0, x1, dtype=np.float32), np.arange(y0, y1, dtype=np.float32))
            colour = fill(xs, ys)
        else:
            colour = np.asarray(fill, np.float32)
        a = cover[..., None]
        region = self.colour[y0:y1, x0:x1]
        region *= 1 - a
        region += colour * a
        if not clip_to_car:
            self.alpha[y0:y1, x0:x1] += cover * (1 - self.alpha[y0:y1, x0:x1])
        if paint:
            self.paint[y0:y1, x0:x1] += cover * (1 - self.paint[y0:y1, x0:x1])
            self.shade[y0:y1, x0:x1] = self.shade[y0:y1, x0:x1] * (1 - cover) + shade * cover
        else:
            self.paint[y0:y1, x0:x1] *= 1 - cover

    def line(self, points: np.ndarray, colour: Colour, width: float, *, opacity: float = 1.0) -> None:
        """An antialiased polyline drawn only over the car (door gaps, trim)."""
        points = np.asarray(points, np.float64)
        pad = int(np.ceil(width)) + 2
        x0 = max(int(np.floor(points[:, 0].min())) - pad, 0)
        y0 = max(int(np.floor(points[:, 1].min())) - pad, 0)
        x1 = min(int(np.ceil(points[:, 0].max())) + pad, self.size)
        y1 = min(int(np.ceil(points[:, 1].max())) + pad, self.size)
        if x1 <= x0 or y1 <= y0:
            return
        layer = np.zeros((y1 - y0, x1 - x0), np.uint8)
        shifted = np.round((points - (x0, y0)) * (1 << SHIFT)).astype(np.int32)
        cv2.polylines(layer, [shifted], False, 255, max(1, round(width)), lineType=cv2.LINE_AA, shift=SHIFT)
        alpha = self.alpha[y0:y1, x0:x1]
        a = (layer.astype(np.float32) / 255.0 * opacity * alpha)[..., None]
        region = self.colour[y0:y1, x0:x1]
        region *= 1 - a
        region += np.asarray(colour, np.float32) * alpha[..., None] * a

"""The paper's mask optimizer (section 3.2, figure 4) as plain numpy functions.

A segmentation model's probability map becomes a car mask in two steps:

1. `threshold_probability`: an adaptive threshold of the probability map (Otsu), with 0.5 as the
   fallback where Otsu has nothing sensible to say;
2. `optimize_mask`: background regions smaller than `fraction` of the image become foreground (no
   holes left in the car), then foreground regions smaller than `fraction` become background (no
   stray specks).

Equivalence with scikit-image, exactly and for every mask: with `limit = small_region_limit(shape,
fraction)` (the largest region size, in pixels, that counts as small),

    optimize_mask(mask, fraction, connectivity).mask
    == remove_small_objects(remove_small_holes(mask, max_size=limit, connectivity=connectivity),
                            max_size=limit, connectivity=connectivity)

scikit-image's `remove_small_holes` is `remove_small_objects` on the inverted mask: it does not treat
background regions that touch the image border specially, so a small background notch at the border
is a "hole" and is filled. That is also the paper's wording ("all background regions with an area of
less than 10%"), and it is what `optimize_mask` does. Both steps use the same connectivity for
foreground and background (1: 4-neighbours, 2: 8-neighbours), as scikit-image does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from corrode.errors import CorrodeError

FALLBACK_THRESHOLD = 0.5
# An Otsu threshold outside this range splits one class's noise, not car from background: a map
# that is almost all background (values near 0) or almost all car (near 1) has no second mode.
SANE_THRESHOLDS = (0.1, 0.9)
# A map whose values span less than this is treated as constant: Otsu has no two classes to split.
MIN_SPREAD = 1e-3
CONNECTIVITIES = (1, 2)


class MaskError(CorrodeError):
    """A probability map or mask that the optimizer cannot work with."""


@dataclass(frozen=True)
class MaskResult:
    """The optimized mask and what the optimizer changed."""

    mask: np.ndarray  # (H, W) bool, True is the car
    holes_filled: int  # background regions turned into foreground
    specks_removed: int  # foreground regions turned into background


def threshold_probability(probabilities: np.ndarray) -> tuple[np.ndarray, float]:
    """Binarise a car probability map with an adaptive threshold: `(mask, threshold)`.

    The paper binarises with "an adaptive threshold technique" (citing Yasira Beevi & Natarajan,
    2009, an Otsu-based method) without further detail. We read it as one global Otsu threshold of
    the `(H, W)` probability map (values in [0, 1], histogram of 256 levels): the value that best
    separates the map's two modes, so a model whose car pixels sit at 0.4 instead of 0.99 is still
    cut where its own histogram has its valley. Otsu is only meaningful when the map has two modes;
    we fall back to 0.5 (the two-class argmax) when the map is (near) constant (spread below
    `MIN_SPREAD`) or when Otsu lands outside `SANE_THRESHOLDS` (0.1 to 0.9). The latter happens
    when the map is essentially all background or all car and Otsu would split noise within one
    class, and also for a confident two-spike map (Otsu then sits just above the lower spike),
    where 0.5 gives the same mask. Pixels strictly above the threshold are the car.
    """
    import cv2

    values = np.asarray(probabilities)
    if values.ndim != 2:
        raise MaskError(f"probability map must be 2-D (H, W), got shape {values.shape}")
    if values.size == 0:
        raise MaskError("probability map is empty")
    values = values.astype(np.float32, copy=False)
    low, high = float(values.min()), float(values.max())
    if not (math.isfinite(low) and math.isfinite(high)):
        raise MaskError("probability map holds NaN or infinite values")
    if low < -1e-6 or high > 1 + 1e-6:
        raise MaskError(f"probability map values must lie in [0, 1], got {low:.4g} to {high:.4g}")
    threshold = FALLBACK_THRESHOLD
    if high - low >= MIN_SPREAD:
        # Otsu on the map quantised to 256 levels (OpenCV: ~10x faster than a float histogram at
        # 1918x1280). Level q > t is the car, i.e. probability > (t + 0.5) / 255.
        levels = cv2.convertScaleAbs(np.ascontiguousarray(values), alpha=255.0)
        level, _ = cv2.threshold(levels, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
        otsu = (float(level) + 0.5) / 255.0
        if SANE_THRESHOLDS[0] <= otsu <= SANE_THRESHOLDS[1]:
            threshold = otsu
    return values > threshold, threshold


def small_region_limit(shape: tuple[int, ...], fraction: float) -> int:
    """The largest region size in pixels that counts as small: sizes strictly below `fraction` of
    the image area (`max_size` for scikit-image's `remove_small_*`)."""
    area = int(np.prod(shape))
    # Round away float noise first (0.1 * 1000 is 100.00000000000001), then "strictly below".
    return max(math.ceil(round(fraction * area, 6)) - 1, 0)


def _remove_small(mask: np.ndarray, limit: int, connectivity: int) -> tuple[np.ndarray, int]:
    """Clear the True regions of `mask` with at most `limit` pixels; `(mask, regions cleared)`."""
    import cv2

    if limit <= 0 or not mask.any():
        return mask, 0
    # Labels alone and a bincount for the areas: about twice as fast as connectedComponentsWithStats,
    # whose bounding boxes and centroids we do not need.
    count, labels = cv2.connectedComponents(
        mask.view(np.uint8), connectivity=4 if connectivity == 1 else 8, ltype=cv2.CV_32S
    )
    if count == 2:
        areas = np.array([mask.size - int(np.count_nonzero(mask)), int(np.count_nonzero(mask))])
    else:
        areas = np.bincount(labels.ravel(), minlength=count)
    small = areas <= limit
    small[0] = False  # label 0 is everything outside the regions
    removed = int(small.sum())
    if removed == 0:
        return mask, 0
    kept = np.flatnonzero(~small)[1:]
    if len(kept) <= 16:
        # At most 1/fraction regions are large: rebuilding from them beats mapping every label.
        result = np.zeros_like(mask)
        for label in kept:
            result |= labels == label
        return result, removed
    return mask & ~small[labels], removed


def optimize_mask(mask: np.ndarray, fraction: float = 0.1, connectivity: int = 1) -> MaskResult:
    """The paper's optimizer on an `(H, W)` bool mask: fill background regions smaller than
    `fraction` of the image area (border-touching ones included), then remove foreground regions
    smaller than `fraction`. `connectivity` 1 is 4-neighbour, 2 is 8-neighbour, as in scikit-image.
    """
    values = np.asarray(mask)
    if values.ndim != 2:
        raise MaskError(f"mask must be 2-D (H, W), got shape {values.shape}")
    if not 0.0 <= fraction <= 1.0:
        raise MaskError(f"fraction must lie in [0, 1], got {fraction}")
    if connectivity not in CONNECTIVITIES:
        raise MaskError(f"connectivity must be 1 (4-neighbour) or 2 (8-neighbour), got {connectivity}")
    values = np.ascontiguousarray(values, dtype=bool)
    limit = small_region_limit(values.shape, fraction)
    background, holes_filled = _remove_small(~values, limit, connectivity)
    foreground, specks_removed = _remove_small(~background, limit, connectivity)
    return MaskResult(foreground, holes_filled, specks_removed)


def mask_probabilities(
    probabilities: np.ndarray, fraction: float = 0.1, connectivity: int = 1
) -> tuple[MaskResult, float]:
    """Threshold then optimize a probability map: `(MaskResult, threshold)`."""
    mask, threshold = threshold_probability(probabilities)
    return optimize_mask(mask, fraction, connectivity), threshold

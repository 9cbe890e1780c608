"""Mask optimizer speed at Carvana resolution (1918x1280): ours (OpenCV) vs scikit-image, same run.

    python benchmarks/masks.py [--repeats 20]

Two masks: a clean car (an ellipse, nothing to change) and the same car with 1% salt-and-pepper
noise (thousands of holes and specks). Prints the median milliseconds of each and the ratio; checks
that both give the same mask. The goal is at most 30 ms per mask for ours. Last line: the Otsu
threshold of a noisy probability map, ours (OpenCV, 256 levels) vs scikit-image's float histogram.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
from skimage.filters import threshold_otsu
from skimage.morphology import remove_small_holes, remove_small_objects

from corrode.masks import optimize_mask, small_region_limit, threshold_probability

WIDTH, HEIGHT = 1918, 1280


def median_ms(function: Callable[[], object], repeats: int) -> float:
    function()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def masks() -> dict[str, np.ndarray]:
    rows, columns = np.mgrid[:HEIGHT, :WIDTH]
    car = ((columns - WIDTH / 2) / 700) ** 2 + ((rows - HEIGHT / 2) / 400) ** 2 < 1
    noise = np.random.default_rng(0).random(car.shape) < 0.01
    return {"clean car": car, "car + 1% noise": car ^ noise}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--fraction", type=float, default=0.1)
    args = parser.parse_args()
    print(f"mask optimizer at {WIDTH}x{HEIGHT}, fraction {args.fraction}, median of {args.repeats}")
    for connectivity in (1, 2):
        for name, mask in masks().items():
            limit = small_region_limit(mask.shape, args.fraction)

            def ours(mask: np.ndarray = mask, connectivity: int = connectivity) -> np.ndarray:
                return optimize_mask(mask, args.fraction, connectivity).mask

            def skimage(mask: np.ndarray = mask, limit: int = limit, connectivity: int = connectivity):
                filled = remove_small_holes(mask, max_size=limit, connectivity=connectivity)
                return remove_small_objects(filled, max_size=limit, connectivity=connectivity)

            same = np.array_equal(ours(), skimage())
            ours_ms = median_ms(ours, args.repeats)
            skimage_ms = median_ms(skimage, args.repeats)
            print(
                f"connectivity {connectivity}, {name:15s}: ours {ours_ms:6.1f} ms, scikit-image "
                f"{skimage_ms:6.1f} ms, speed-up x{skimage_ms / ours_ms:.1f}, identical: {same}"
            )
    rng = np.random.default_rng(1)
    car = masks()["clean car"]
    probabilities = np.clip(np.where(car, 0.8, 0.15) + rng.normal(0, 0.1, car.shape), 0, 1).astype(np.float32)
    ours_ms = median_ms(lambda: threshold_probability(probabilities), args.repeats)
    skimage_ms = median_ms(lambda: probabilities > threshold_otsu(probabilities, nbins=256), args.repeats)
    print(
        f"Otsu threshold of a probability map: ours {ours_ms:6.1f} ms, scikit-image {skimage_ms:6.1f} ms, "
        f"speed-up x{skimage_ms / ours_ms:.1f} (ours {threshold_probability(probabilities)[1]:.3f}, "
        f"scikit-image {threshold_otsu(probabilities, nbins=256):.3f})"
    )


if __name__ == "__main__":
    main()

"""Segmenter inference speed on the CPU: ms per image at 256 px, the paper's width 1.0, fp32 vs bf16.

    python benchmarks/segment.py [--repeats 10] [--threads N]

fp32 is the baseline, measured in the same run. Weights are random: speed does not depend on them.
Figures: the model alone (`Segmenter.predict`, batch 1 and batch 8) and the whole call a user makes
(`Segmenter.probabilities` on a 1918x1280 Carvana-sized photo: resize in, predict, resize back).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from corrode.models.unet import CarSegmenter, SegmenterConfig
from corrode.segment import Segmenter


def timed(function, repeats: int) -> float:
    """Median seconds of `repeats` calls after two warm-up calls."""
    function()
    function()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    model = CarSegmenter(SegmenterConfig(size=256)).eval()
    device = torch.device("cpu")
    segmenters = {
        "fp32": Segmenter(model, device, None),
        "bf16": Segmenter(model, device, torch.bfloat16),
    }
    photo = np.random.default_rng(0).integers(0, 256, (1280, 1918, 3), dtype=np.uint8)
    one = torch.rand(1, 3, 256, 256)
    eight = torch.rand(8, 3, 256, 256)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU; median of {args.repeats}")
    results: dict[str, dict[str, float]] = {}
    for name, segmenter in segmenters.items():
        results[name] = {
            "batch 1": timed(lambda s=segmenter: s.predict(one), args.repeats) * 1000,
            "batch 8": timed(lambda s=segmenter: s.predict(eight), args.repeats) * 1000 / 8,
            "1918x1280 photo": timed(lambda s=segmenter: s.probabilities(photo), args.repeats) * 1000,
        }
    print(f"{'ms per image, 256 px, width 1.0':34} {'fp32':>9} {'bf16':>9} {'bf16/fp32':>10}")
    for case in results["fp32"]:
        fp32, bf16 = results["fp32"][case], results["bf16"][case]
        print(f"{case:34} {fp32:9.1f} {bf16:9.1f} {bf16 / fp32:10.2f}")
    difference = np.abs(
        segmenters["fp32"].probabilities(photo) - segmenters["bf16"].probabilities(photo)
    ).max()
    print(f"largest |fp32 - bf16| probability difference on the photo: {difference:.4f}")


if __name__ == "__main__":
    main()

"""Segmenter inference speed on the CPU: ms per image at 256 px, the paper's width 1.0, fp32 vs bf16.

    python benchmarks/segment.py [--repeats 10] [--threads N]

fp32 is the baseline, measured in the same run, calls alternated with bf16. Weights are random:
speed does not depend on them.
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


def timed_pair(baseline, candidate, repeats: int) -> tuple[float, float]:
    """Median seconds of `baseline` and `candidate`, alternated so a busy shared CPU slows both alike."""
    for function in (baseline, candidate, baseline, candidate):  # warm-up
        function()
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for function, bucket in ((baseline, times[0]), (candidate, times[1])):
            started = time.perf_counter()
            function()
            bucket.append(time.perf_counter() - started)
    return statistics.median(times[0]), statistics.median(times[1])


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
    fp32, bf16 = segmenters["fp32"], segmenters["bf16"]
    cases = {
        "model, batch 1": (lambda s: s.predict(one), 1),
        "model, batch 8": (lambda s: s.predict(eight), 8),
        "probabilities(1918x1280 photo)": (lambda s: s.probabilities(photo), 1),
    }
    print(f"{'ms per image, 256 px, width 1.0':34} {'fp32':>9} {'bf16':>9} {'bf16/fp32':>10}")
    for case, (call, images) in cases.items():
        base, other = timed_pair(lambda c=call: c(fp32), lambda c=call: c(bf16), args.repeats)
        base, other = base * 1000 / images, other * 1000 / images
        print(f"{case:34} {base:9.1f} {other:9.1f} {other / base:10.2f}")
    difference = np.abs(
        segmenters["fp32"].probabilities(photo) - segmenters["bf16"].probabilities(photo)
    ).max()
    print(f"largest |fp32 - bf16| probability difference on the photo: {difference:.4f}")


if __name__ == "__main__":
    main()

"""Random augmentation throughput on the CPU: kornia (ours, batched) vs torchvision.transforms.v2.

    python benchmarks/augment.py [--batch 8] [--size 256] [--repeats 20] [--threads N]

Both do the same ops with the same settings (`PipelineConfig` defaults): horizontal flip, random
resized crop, small affine (p 0.5), colour jitter (p 0.8), on image + mask with the mask resampled
nearest. kornia draws per-sample parameters for the whole batch in one call; torchvision v2 applies
one set of parameters per call, so it runs once per sample, as a Dataset would. Prints pairs per
second (median over repeats) and the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from corrode.augmentation import PipelineConfig, augment_batch, build_pipeline


def torchvision_pipeline(config: PipelineConfig) -> v2.Compose:
    return v2.Compose(
        [
            v2.RandomHorizontalFlip(p=config.flip_probability),
            v2.RandomResizedCrop(
                config.size, scale=config.crop_scale, ratio=config.crop_ratio, antialias=True
            ),
            v2.RandomApply(
                [
                    v2.RandomAffine(
                        config.degrees, translate=(config.translate, config.translate), scale=config.scale
                    )
                ],
                p=config.affine_probability,
            ),
            v2.RandomApply(
                [v2.ColorJitter(config.brightness, config.contrast, config.saturation, config.hue)],
                p=config.jitter_probability,
            ),
        ]
    )


def median_seconds(function: Callable[[], object], repeats: int) -> float:
    function()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = PipelineConfig(size=args.size)
    images = torch.rand(args.batch, 3, args.size, args.size)
    masks = (torch.rand(args.batch, 1, args.size, args.size) > 0.5).float()

    ours = build_pipeline(config)
    theirs = torchvision_pipeline(config)

    def run_kornia() -> object:
        return augment_batch(images, masks, ours)

    def run_torchvision() -> object:
        outputs = []
        for image, mask in zip(images, masks, strict=True):
            out_image, out_mask = theirs(tv_tensors.Image(image), tv_tensors.Mask(mask))
            outputs.append((out_image, out_mask))
        return torch.stack([o[0] for o in outputs]), torch.stack([o[1] for o in outputs])

    kornia_seconds = median_seconds(run_kornia, args.repeats)
    torchvision_seconds = median_seconds(run_torchvision, args.repeats)
    kornia_rate = args.batch / kornia_seconds
    torchvision_rate = args.batch / torchvision_seconds
    print(
        f"batch {args.batch} at {args.size} px on CPU ({torch.get_num_threads()} threads), "
        f"median of {args.repeats}:"
    )
    print(f"  kornia (batched)          {kornia_rate:8.1f} pairs/s  ({kornia_seconds * 1000:.1f} ms/batch)")
    torchvision_ms = torchvision_seconds * 1000
    print(f"  torchvision v2 (per pair) {torchvision_rate:8.1f} pairs/s  ({torchvision_ms:.1f} ms/batch)")
    print(f"  kornia / torchvision: x{kornia_rate / torchvision_rate:.2f}")


if __name__ == "__main__":
    main()

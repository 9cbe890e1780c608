"""How fast `corrode synth` draws, against just writing the same files.

    python benchmarks/synth.py [--size 256] [--workers 2] [--share 1.0] [--rust-style photo flat]

Draws the default set (300/65/97/73 level images + 20 cars x 8 Carvana views, scaled by --share) into
a temporary folder, once per rust style, and prints images/s for each. The baseline, measured in the
same run, writes the same number of ready-made images and masks of the same size and formats
(PNG + PNG, JPEG + GIF) in one process; the ratio says what drawing costs on top of encoding and writing.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def baseline(folder: Path, levels_count: int, carvana_count: int, size: int) -> tuple[float, float]:
    """Wall and CPU seconds to write ready-made images + masks in the synth formats, in one process."""
    from corrode.images import write_image, write_mask
    from corrode.synth import draw_scene

    scene = draw_scene(np.random.default_rng(0), size, "moderate", view="side")
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(levels_count):
        write_image(folder / "levels" / f"{i:05d}.png", scene.image)
        write_mask(folder / "levels_masks" / f"{i:05d}.png", scene.mask)
    for i in range(carvana_count):
        write_image(folder / "train" / f"{i:05d}.jpg", scene.image, quality=95)
        write_mask(folder / "train_masks" / f"{i:05d}_mask.gif", scene.mask)
    return time.perf_counter() - start, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--share", type=float, default=1.0, help="fraction of the default counts")
    parser.add_argument("--cpu-share", type=float, default=0.15, help="share drawn in-process to time CPU")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rust-style", nargs="+", default=["photo", "flat"], help="styles to time")
    args = parser.parse_args()
    for style in args.rust_style:
        run(args, style)


def run(args: argparse.Namespace, style: str) -> None:
    from corrode.synth import SynthConfig, synth

    def config(out: Path, share: float, workers: int) -> SynthConfig:
        defaults = SynthConfig(out=out)
        counts = {name: max(1, round(n * share)) for name, n in defaults.counts.items()}
        cars = max(1, round(defaults.carvana_cars * share))
        return SynthConfig(
            out=out,
            **counts,
            carvana_cars=cars,
            size=args.size,
            seed=args.seed,
            workers=workers,
            rust_style=style,
        )

    with tempfile.TemporaryDirectory() as temp:
        full = config(Path(temp) / "synth", args.share, args.workers)
        start = time.perf_counter()
        synth(full)
        seconds = time.perf_counter() - start
        total = full.total
        # CPU time per image (drawing + writing), in this process so that it can be measured exactly.
        small = config(Path(temp) / "cpu", args.cpu_share, 0)
        cpu = time.process_time()
        synth(small)
        cpu_per_image = (time.process_time() - cpu) / small.total
        write_seconds, write_cpu = baseline(
            Path(temp) / "baseline",
            total - full.carvana_cars * full.carvana_views,
            full.carvana_cars * full.carvana_views,
            args.size,
        )

    load = os.getloadavg()[0]
    print(
        f"synth, rust style {style}: {total} images at {args.size} px, {args.workers} workers, "
        f"{os.cpu_count()} cores, load average {load:.1f}"
    )
    print(f"  wall {seconds:.2f} s -> {total / seconds:.1f} images/s (as measured, under the current load)")
    print(
        f"  CPU {1000 * cpu_per_image:.1f} ms per image (draw + write, {small.total} images in-process) -> "
        f"{max(args.workers, 1) / cpu_per_image:.1f} images/s on {max(args.workers, 1)} free cores"
    )
    print(
        f"baseline, writing {total} ready-made images + masks in 1 process: wall {write_seconds:.2f} s "
        f"({total / write_seconds:.1f} images/s), CPU {1000 * write_cpu / total:.1f} ms per image"
    )
    print(
        f"ratio synth / baseline: wall {seconds / write_seconds:.2f}x, "
        f"CPU per image {cpu_per_image / (write_cpu / total):.2f}x"
    )


if __name__ == "__main__":
    main()

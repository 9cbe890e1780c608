"""Speed of one full train-gan step on the CPU, against a dense 3x3 convolution timed in the same run.

    python benchmarks/train_gan.py                 # the paper config at 128 px (64 channels, 9 blocks)
    python benchmarks/train_gan.py --size 64 --base-channels 16 --residual-blocks 4 --steps 5

A step is everything `corrode train-gan` does per step: six generators forward (translations,
both cycles), four discriminators on pooled fakes, both backward passes and both Adam updates.
FLOPs are counted with torch.utils.flop_counter.FlopCounterMode on one step. The baseline is the
generator's dominant layer alone: a 3x3 convolution with 4x base channels at size/4, forward and
backward, the most a convolution of that shape reaches on this machine. Prints fp32 and bf16
(autocast) figures and their ratios. On a shared machine wall times vary; CPU time is printed too.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode

from corrode.distributed import DistContext
from corrode.train_gan import GanTrainer, TrainGanConfig, load_levels


def make_data(root: Path, size: int) -> Path:
    rng = np.random.default_rng(0)
    for level, count in (("none", 6), ("mild", 3), ("moderate", 3), ("severe", 3)):
        (root / level).mkdir(parents=True)
        for i in range(count):
            Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(
                root / level / f"{i}.png"
            )
    return root


def time_call(function, repeats: int) -> tuple[float, float]:
    """Median wall seconds and median CPU seconds of `repeats` calls (the caller has warmed up)."""
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        function()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def conv_baseline(channels: int, side: int, dtype: torch.dtype | None, repeats: int) -> tuple[float, float]:
    """(GFLOP/s wall, GFLOP/s CPU) of a dense 3x3 convolution, forward + backward."""
    conv = torch.nn.Conv2d(channels, channels, 3, padding=1)
    x = torch.randn(1, channels, side, side, requires_grad=True)

    def run() -> None:
        with torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
            y = conv(x)
        y.float().sum().backward()

    with FlopCounterMode(display=False) as counter:
        run()
    flops = counter.get_total_flops()
    run()
    wall, cpu = time_call(run, repeats)
    return flops / wall / 1e9, flops / max(cpu, 1e-9) / 1e9


def step_figures(config: TrainGanConfig, images, repeats: int) -> dict[str, float]:
    trainer = GanTrainer(config, images, DistContext(0, 1, 0, torch.device("cpu")))
    with FlopCounterMode(display=False) as counter:  # also the warm-up step
        trainer.train_step()
    flops = counter.get_total_flops()
    wall, cpu = time_call(trainer.train_step, repeats)
    return {"seconds": wall, "cpu_seconds": cpu, "gflop": flops / 1e9, "gflops": flops / wall / 1e9}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--base-channels", type=int, default=64)
    parser.add_argument("--residual-blocks", type=int, default=9)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per precision (median)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--precisions", default="fp32,bf16")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, size {args.size}, "
        f"base channels {args.base_channels}, residual blocks {args.residual_blocks}"
    )
    with tempfile.TemporaryDirectory() as folder:
        data = make_data(Path(folder) / "levels", args.size)
        images, _ = load_levels(data, args.size)
        results = {}
        for precision in args.precisions.split(","):
            config = TrainGanConfig(
                data=data,
                out=Path(folder) / "run",
                image_size=args.size,
                base_channels=args.base_channels,
                residual_blocks=args.residual_blocks,
                discriminator_channels=64,
                device="cpu",
                precision=precision,
            )
            dtype = torch.bfloat16 if precision == "bf16" else None
            step = step_figures(config, images, args.steps)
            conv_wall, conv_cpu = conv_baseline(
                4 * args.base_channels, args.size // 4, dtype, max(3, args.steps)
            )
            results[precision] = step
            print(
                f"[{precision}] step: median {step['seconds']:.2f} s wall ({step['cpu_seconds']:.2f} s CPU), "
                f"{step['gflop']:.1f} GFLOP -> {step['gflops']:.1f} GFLOP/s"
            )
            print(
                f"[{precision}] baseline 3x3 conv {4 * args.base_channels}ch at {args.size // 4}px fwd+bwd: "
                f"{conv_wall:.1f} GFLOP/s wall ({conv_cpu:.1f} per CPU-second)"
            )
            per_cpu = step["gflop"] / step["cpu_seconds"]
            print(
                f"[{precision}] step / baseline: {100 * step['gflops'] / conv_wall:.0f}% by wall time, "
                f"{100 * per_cpu / conv_cpu:.0f}% by CPU time ({per_cpu:.1f} GFLOP/CPU-s), goal >= 60%"
            )
        if "fp32" in results and "bf16" in results:
            ratio = results["fp32"]["seconds"] / results["bf16"]["seconds"]
            print(f"bf16 autocast vs fp32: {ratio:.2f}x {'faster' if ratio > 1 else 'slower'} per step")


if __name__ == "__main__":
    main()

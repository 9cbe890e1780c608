"""Check the GPU paths of every trainer and of render on a CUDA machine, and time them.

    python benchmarks/gpu_check.py [--steps 20] [--only seg,classifier,gan,ddp,render]
    python benchmarks/gpu_check.py --cpu-smoke      # the same code paths on the CPU, tiny sizes

Cases, each through the library's own entry points (`train_seg`, `train_classifier`, `train_gan`,
`render`) on a synthetic data set written to a temporary folder:
- every trainer with bf16 and with fp16 autocast (fp16 with its GradScaler), channels-last (what
  `corrode.device.prepare` / `to_device` do on CUDA: checked on a prepared convolution), and with
  `torch.compile` (bf16);
- every trainer under DistributedDataParallel over every visible GPU (NCCL, one process per GPU
  through torch.multiprocessing); with one GPU this is said and skipped (NCCL needs a GPU per rank);
- a render batch with the GAN trained above, bf16 and fp16.
Per case it prints the median step time (after the first step, which holds the warm-up and any
compilation), images/s (a GAN step reads one image per level, so 4 x batch per rank) and peak GPU
memory (`torch.cuda.max_memory_allocated`). The sizes are the paper's: segmenter 256 px batch 8,
classifier 128 px batch 32, GAN 256 px (64 channels, 9 blocks) batch 1. Without CUDA it says so and
exits 0. `--cpu-smoke` runs the same cases on the CPU at 32 px with tiny networks (fp16 becomes fp32,
which the CPU cannot autocast; `torch.compile` is left out unless `--compile` is given, because
inductor's CPU build takes minutes; DDP uses two gloo processes).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from corrode import levels
from corrode.training import Reporter

TRAINERS = ("seg", "classifier", "gan")
# The CPU cannot autocast to fp16: the smoke run takes fp32 in its place.
PRECISIONS = {"cuda": ("bf16", "fp16"), "cpu": ("bf16", "fp32")}


@dataclass(frozen=True)
class Sizes:
    seg: int
    seg_batch: int
    classifier: int
    classifier_batch: int
    gan: int
    gan_channels: int
    gan_blocks: int
    photo: tuple[int, int]
    tiny_networks: bool


GPU_SIZES = Sizes(256, 8, 128, 32, 256, 64, 9, (1024, 768), False)
CPU_SIZES = Sizes(32, 4, 32, 4, 32, 4, 1, (96, 64), True)


@dataclass(frozen=True)
class Case:
    trainer: str
    precision: str
    compile: bool = False
    world: int = 1

    @property
    def name(self) -> str:
        return (
            f"{self.trainer} {self.precision}"
            + (" compile" if self.compile else "")
            + (f" ddp x{self.world}" if self.world > 1 else "")
        )


class StepClock(Reporter):
    """Times every optimisation step: seg and classifier advance their `train` bar once per batch,
    the GAN reports each step."""

    def __init__(self, device: torch.device) -> None:
        super().__init__()
        self.device = device
        self.times: list[float] = []

    def _tick(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.times.append(time.perf_counter())

    def advance(self, name: str, completed: int | None = None, description: str | None = None) -> None:
        if name == "train" and completed is None and description is None:
            self._tick()

    def step(self, step: int, total: int, values: dict[str, float]) -> None:
        self._tick()

    def start(self, name: str, total: int | None, description: str | None = None) -> None:
        if name == "train" and not self.times:
            self._tick()  # the clock starts when the first epoch does

    def gaps(self) -> list[float]:
        return list(np.diff(self.times)[1:])  # the first step holds warm-up and compilation

    def seconds_per_step(self) -> float:
        gaps = self.gaps()
        return float(statistics.median(gaps)) if gaps else float("nan")


# --- synthetic data --------------------------------------------------------------------------------------


def _car(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:size, 0:size]
    cx, cy = rng.uniform(0.35, 0.65, 2) * size
    mask = ((xx - cx) / (0.35 * size)) ** 2 + ((yy - cy) / (0.25 * size)) ** 2 < 1
    image = rng.integers(0, 80, (size, size, 3), dtype=np.uint8)
    image[mask] = rng.integers(60, 230, 3)
    return image, mask


def write_pairs(root: Path, count: int, size: int) -> Path:
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for index in range(count):
        image, mask = _car(rng, size)
        Image.fromarray(image).save(root / "images" / f"car{index:03d}.png")
        Image.fromarray(mask.astype(np.uint8) * 255).save(root / "masks" / f"car{index:03d}.png")
    return root


def write_levels(root: Path, per_level: int, size: int) -> Path:
    """Level folders of masked cars (black background), rust speckle growing with the level."""
    rng = np.random.default_rng(1)
    for level in levels.LEVELS:
        (root / level.name).mkdir(parents=True)
        for index in range(per_level):
            image, mask = _car(rng, size)
            image[~mask] = 0
            image[mask & (rng.random((size, size)) < level.index / 4)] = (140, 70, 30)
            Image.fromarray(image).save(root / level.name / f"car{index:03d}.png")
    return root


# --- one case -------------------------------------------------------------------------------------------


def train_case(case: Case, sizes: Sizes, steps: int, folder: Path, device: str) -> dict[str, Any]:
    """Run `case` in this process (one rank of it under DDP); returns its figures (rank 0)."""
    from corrode.train_classifier import TrainClassifierConfig, train_classifier
    from corrode.train_gan import TrainGanConfig, train_gan
    from corrode.train_seg import TrainSegConfig, train_seg

    torch_device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0))) if device == "cuda" else None
    clock = StepClock(torch_device or torch.device("cpu"))
    out = folder / case.name.replace(" ", "-")
    common = {"device": device, "precision": case.precision, "compile": case.compile, "seed": 0}
    # One epoch of `steps` steps on every rank (plus the first, which is not timed).
    per_step = {"seg": sizes.seg_batch, "classifier": sizes.classifier_batch, "gan": 1}[case.trainer]
    if case.trainer == "seg":
        width, decoder = (0.25, (8, 8, 8, 8)) if sizes.tiny_networks else (1.0, (512, 256, 128, 64))
        config = TrainSegConfig(
            data=folder / "pairs", out=out, size=sizes.seg, epochs=1, batch_size=sizes.seg_batch,
            val_fraction=0.0, width=width, decoder_channels=decoder, encoder_weights="none", **common,
        )  # fmt: skip
        train = train_seg
    elif case.trainer == "classifier":
        config = TrainClassifierConfig(
            data=folder / "levels", out=out, size=sizes.classifier, epochs=1,
            batch_size=sizes.classifier_batch, val_fraction=0.0, balance="none",
            width=0.25 if sizes.tiny_networks else 1.0, encoder_weights="none", **common,
        )  # fmt: skip
        train = train_classifier
    else:
        config = TrainGanConfig(
            data=folder / "gan_levels", out=out, image_size=sizes.gan, epochs=1, decay_epochs=0,
            base_channels=sizes.gan_channels, residual_blocks=sizes.gan_blocks,
            discriminator_channels=sizes.gan_channels, samples=1, checkpoint_every=0, **common,
        )  # fmt: skip
        train = train_gan
    if torch_device is not None:
        torch.cuda.reset_peak_memory_stats(torch_device)
    started = time.perf_counter()
    train(config, clock)
    seconds = time.perf_counter() - started
    per_second = per_step * case.world * (4 if case.trainer == "gan" else 1)
    step = clock.seconds_per_step()
    return {
        "case": case.name,
        "steps": len(clock.gaps()),
        "step_ms": step * 1000,
        "images_per_s": per_second / step if step == step else float("nan"),
        "peak_mib": torch.cuda.max_memory_allocated(torch_device) / 2**20 if torch_device else None,
        "seconds": seconds,
        "run": str(out),
    }


def _ddp_rank(rank: int, world: int, port: int, case: Case, sizes: Sizes, steps: int, folder: str,
              device: str, report: str) -> None:  # fmt: skip
    os.environ.update(
        {
            "RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank),
            "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
        }
    )  # fmt: skip
    if device == "cpu":
        torch.set_num_threads(1)
    figures = train_case(case, sizes, steps, Path(folder), device)
    if rank == 0:
        Path(report).write_text(json.dumps(figures))


def ddp_case(case: Case, sizes: Sizes, steps: int, folder: Path, device: str) -> dict[str, Any]:
    import torch.multiprocessing as mp

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    report = folder / f"ddp-{case.trainer}.json"
    mp.spawn(
        _ddp_rank,
        args=(case.world, port, case, sizes, steps, str(folder), device, str(report)),
        nprocs=case.world,
        join=True,
    )
    return json.loads(report.read_text())


def render_case(gan_run: Path, precision: str, sizes: Sizes, folder: Path, device: str) -> dict[str, Any]:
    """A batch of photos through `corrode.render.render` (masks given, so no segmenter is needed)."""
    from corrode.render import RenderConfig, render

    photos, masks = folder / "photos", folder / "photo_masks"
    if not photos.exists():
        photos.mkdir()
        masks.mkdir()
        rng = np.random.default_rng(2)
        width, height = sizes.photo
        for index in range(16):
            image = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
            mask = np.zeros((height, width), np.uint8)
            mask[height // 4 : 3 * height // 4, width // 5 : 4 * width // 5] = 255
            Image.fromarray(image).save(photos / f"photo{index:02d}.jpg", quality=92)
            Image.fromarray(mask).save(masks / f"photo{index:02d}.png")
    out = folder / f"render-{precision}"
    config = RenderConfig(
        inputs=(str(photos),), gan=str(gan_run / "model.safetensors"), mask=masks, out_dir=out,
        device=device, precision=precision, batch_size=8,
    )  # fmt: skip
    cuda = torch.device("cuda") if device == "cuda" else None
    if cuda is not None:
        torch.cuda.reset_peak_memory_stats(cuda)
    started = time.perf_counter()
    summary = render(config)
    seconds = time.perf_counter() - started
    if summary.written != 16:
        raise RuntimeError(f"render wrote {summary.written} of 16: {summary.line()}")
    return {
        "case": f"render {precision} batch 8",
        "steps": 16,
        "step_ms": seconds / 16 * 1000,
        "images_per_s": 16 / seconds,
        "peak_mib": torch.cuda.max_memory_allocated(cuda) / 2**20 if cuda else None,
        "seconds": seconds,
        "run": str(out),
    }


def check_channels_last(device: str) -> str:
    from corrode.device import prepare, to_device

    conv = prepare(torch.nn.Conv2d(3, 8, 3), torch.device(device))
    batch = to_device(torch.zeros(2, 3, 16, 16), torch.device(device))
    weight_ok = conv.weight.is_contiguous(memory_format=torch.channels_last)
    input_ok = batch.is_contiguous(memory_format=torch.channels_last)
    if device == "cuda" and not (weight_ok and input_ok):
        raise RuntimeError("corrode.device.prepare / to_device did not give channels-last on CUDA")
    return "channels-last: " + ("on (weights and inputs)" if weight_ok and input_ok else "off on the CPU")


def plan(args: argparse.Namespace, device: str) -> list[Case]:
    precisions = PRECISIONS[device]
    only = set(args.only.split(",")) if args.only else {*TRAINERS, "ddp", "render"}
    cases: list[Case] = []
    for trainer in TRAINERS:
        if trainer not in only:
            continue
        cases += [Case(trainer, precision) for precision in precisions]
        if device == "cuda" or args.compile:
            cases.append(Case(trainer, "bf16", compile=True))
    if "ddp" in only:
        world = torch.cuda.device_count() if device == "cuda" else 2
        if world >= 2:
            cases += [Case(trainer, precisions[0], world=world) for trainer in TRAINERS]
    return cases


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu-smoke", action="store_true", help="Run the same cases on the CPU, tiny.")
    parser.add_argument("--steps", type=int, default=None, help="Timed steps per case (default 20; 3 smoke).")
    parser.add_argument("--only", default="", help="Comma list of seg,classifier,gan,ddp,render.")
    parser.add_argument("--compile", action="store_true", help="Also torch.compile in the CPU smoke run.")
    parser.add_argument("--json", action="store_true", help="One JSON line per case on stdout.")
    args = parser.parse_args(argv)
    if args.cpu_smoke:
        device, sizes = "cpu", CPU_SIZES
        torch.set_num_threads(1)
    elif torch.cuda.is_available():
        device, sizes = "cuda", GPU_SIZES
    else:
        print("gpu_check: no CUDA device here, nothing to check (--cpu-smoke runs the same paths on the CPU)")
        return 0
    steps = args.steps or (3 if args.cpu_smoke else 20)
    name = torch.cuda.get_device_name() if device == "cuda" else "CPU (smoke run, tiny sizes)"
    print(f"gpu_check on {name}: {steps} timed steps per case; torch {torch.__version__}", flush=True)
    print(check_channels_last(device))
    if device == "cuda" and torch.cuda.device_count() < 2:
        print("ddp: skipped, 1 GPU visible (NCCL needs one GPU per rank)")
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="corrode-gpu-check-") as temp:
        folder = Path(temp)
        cases = plan(args, device)
        # One epoch = the first (untimed) step + `steps` timed ones, on every rank of the widest case.
        world = max((case.world for case in cases), default=1)
        write_pairs(folder / "pairs", (steps + 1) * sizes.seg_batch * world, sizes.seg)
        per_level = max((steps + 1) * world, -(-(steps + 1) * sizes.classifier_batch * world // 4))
        write_levels(folder / "levels", per_level, sizes.classifier)
        # The GAN's epoch is a pass over its largest level, one image per level and step.
        write_levels(folder / "gan_levels", (steps + 2) * world, sizes.gan)
        gan_run: Path | None = None
        for case in cases:
            runner = ddp_case if case.world > 1 else train_case
            figures = runner(case, sizes, steps, folder, device)
            results.append(figures)
            report(figures, args.json)
            if case.trainer == "gan" and case.world == 1 and gan_run is None:
                gan_run = Path(figures["run"])
        if not args.only or "render" in args.only.split(","):
            if gan_run is None:
                print("render: skipped (it renders with the model of a gan case)")
            for precision in PRECISIONS[device] if gan_run is not None else ():
                figures = render_case(gan_run, precision, sizes, folder, device)
                results.append(figures)
                report(figures, args.json)
    print(f"gpu_check: {len(results)} cases passed")
    return 0


def report(figures: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps({k: v for k, v in figures.items() if k != "run"}), flush=True)
        return
    peak = "-" if figures["peak_mib"] is None else f"{figures['peak_mib']:.0f} MiB"
    print(
        f"  {figures['case']:28s} {figures['step_ms']:9.1f} ms/step {figures['images_per_s']:9.1f} images/s  "
        f"peak {peak:>10s}  ({figures['steps']} steps, {figures['seconds']:.1f} s in all)",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())

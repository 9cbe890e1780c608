"""How fast `corrode render` is, where its time goes, what memory it needs, and what --gan-size buys.

    python benchmarks/render.py [--repeats 3] [--size 256] [--base-channels 64] [--blocks 9] [--threads N]
                                [--skip-12mp-native]

Models: a generator set of the paper's size (64 channels, 9 residual blocks, attention as in the
`recommended` preset) trained at `--size` px and the paper's segmenter (MobileNetV2 width 1.0), both
with random weights (speed does not depend on the values), saved and loaded through the real
`Translator.load` / `Segmenter.load`. The segmenter runs for real on every photo; its (untrained)
probability map is then swapped for a car-shaped one so the rest of the pipeline sees a real car.
The photo is examples/photos/blue_sedan.jpg (1 MP) and the same upscaled to 4000x3000 (12 MP).

Prints
1. the generator alone, one image at the training size: fp32, bf16 autocast, ONNX Runtime;
2. a profile of one photo end to end, stage by stage (decode, segmenter, mask clean-up at full
   resolution, crop, generator, composite, encode), at 1 MP and 12 MP, and the ratio end to end /
   the generator stage at the training size (goal <= 1.25 at 1 MP);
3. per `--gan-size` (training size, 512, native) at 1 MP and 12 MP: end-to-end time and peak memory
   (each case in its own process, models loaded: peak resident memory above that, sampled);
4. the detail figure: high-frequency energy of (output - input) inside the car (the change minus
   its 5x5 box blur, mean square per pixel) for the training size (today's upsampled change) against
   native, on the same photo. A random generator has no learned rust; the figure says how much
   photo-scale detail each path can carry, not how good the rust is.
Times are medians of `--repeats` after a warm-up; wall and process CPU time (the machine may be shared:
CPU time is the steadier figure; `--threads 1` keeps busy-waiting thread pools from inflating it).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch

from corrode.checkpoint import save_model
from corrode.compositing import composite
from corrode.config import to_dict
from corrode.images import read_image, write_image
from corrode.models.cyclegan import CycleGanConfig, GeneratorSet
from corrode.models.unet import CarSegmenter, SegmenterConfig
from corrode.render import RenderConfig, Renderer, fast_precision, generator_precision
from corrode.render.files import write_output
from corrode.segment import Segmenter, segment_masks
from corrode.translate import Translator

PHOTO = Path(__file__).resolve().parent.parent / "examples" / "photos" / "blue_sedan.jpg"


def timed(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median (wall, CPU) seconds of `repeats` runs after one warm-up."""
    fn()
    walls, cpus = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - start_cpu)
    return statistics.median(walls), statistics.median(cpus)


class PeakMemory:
    """Peak resident memory above the level at entry, sampled every 2 ms from /proc/self/statm."""

    def __init__(self) -> None:
        self.page = os.sysconf("SC_PAGE_SIZE")
        self.peak = 0
        self._stop = threading.Event()

    def _rss(self) -> int:
        with open("/proc/self/statm", encoding="ascii") as handle:
            return int(handle.read().split()[1]) * self.page

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            self._stop.wait(0.002)

    def __enter__(self) -> PeakMemory:
        self.start = self._rss()
        self.peak = self.start
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())

    @property
    def mib(self) -> float:
        return (self.peak - self.start) / 2**20


class CarShapedSegmenter:
    """Runs the real segmenter, then hands back a car-shaped map in place of the untrained one."""

    def __init__(self, segmenter: Segmenter, reference: np.ndarray) -> None:
        self.segmenter = segmenter
        self.reference = reference.astype(np.float32)

    def probabilities_batch(self, images: list[np.ndarray]) -> list[np.ndarray]:
        self.segmenter.probabilities_batch(images)
        out = []
        for image in images:
            height, width = image.shape[:2]
            resized = cv2.resize(self.reference, (width, height), interpolation=cv2.INTER_LINEAR)
            out.append(np.clip(resized * 0.9 + 0.05, 0, 1).astype(np.float32))
        return out


def reference_mask(image: np.ndarray) -> np.ndarray:
    """The sedan photo's car, found by colour (it is bright blue on grass and sky)."""
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
    blue = (hsv[..., 0] > 100) & (hsv[..., 0] < 130) & (hsv[..., 1] > 120)
    dark = hsv[..., 2] < 60
    rows, cols = np.nonzero(blue)
    box = np.zeros_like(blue)
    box[rows.min() : rows.max() + 60, cols.min() : cols.max()] = True
    return (blue | dark) & box


def high_frequency_energy(before: np.ndarray, after: np.ndarray, mask: np.ndarray) -> float:
    change = after.astype(np.float32) / 255.0 - before.astype(np.float32) / 255.0
    detail = change - cv2.blur(change, (5, 5))
    return float((detail**2).sum(axis=2)[mask].mean())


class Setup:
    """Models saved to `folder` and loaded as render loads them, and the test photos."""

    def __init__(self, folder: Path, args: argparse.Namespace) -> None:
        torch.manual_seed(0)
        gan_config = CycleGanConfig(
            base_channels=args.base_channels, residual_blocks=args.blocks, attention=True
        )
        self.gan = folder / "gan.safetensors"
        if not self.gan.exists():
            save_model(
                self.gan,
                GeneratorSet(gan_config),
                kind="gan",
                config={"model": to_dict(gan_config), "image_size": args.size},
            )
        seg_config = SegmenterConfig(size=args.size)
        self.seg = folder / "seg.safetensors"
        if not self.seg.exists():
            save_model(self.seg, CarSegmenter(seg_config), kind="seg", config=to_dict(seg_config))
        self.cfg = RenderConfig(gan=str(self.gan), seg=str(self.seg), device="cpu")
        self.precision = generator_precision(self.cfg)
        self.translator = Translator.load(self.gan, device="cpu", precision=self.precision)
        photo = read_image(PHOTO)
        self.segmenter = CarShapedSegmenter(
            Segmenter.load(self.seg, device="cpu", precision=fast_precision(self.cfg)), reference_mask(photo)
        )
        self.photos = {"1 MP": folder / "photo_1mp.jpg", "12 MP": folder / "photo_12mp.jpg"}
        if not self.photos["12 MP"].exists():
            write_image(self.photos["1 MP"], photo, quality=92)
            big = cv2.resize(photo, (4000, 3000), interpolation=cv2.INTER_CUBIC)
            write_image(self.photos["12 MP"], big, quality=92)
        self.out = folder / "out.jpg"

    def renderer(self, gan_size: int | str) -> Renderer:
        return Renderer(self.translator, self.segmenter, gan_size=gan_size)

    def end_to_end(self, path: Path, gan_size: int | str) -> np.ndarray:
        renderer = self.renderer(gan_size)
        image = read_image(path)
        (rendering,) = renderer.render([image], ["severe"])
        write_output(self.out, rendering.outputs["severe"], quality=95)
        return rendering.outputs["severe"]


def profile(setup: Setup, path: Path, repeats: int) -> dict[str, tuple[float, float]]:
    """(wall, CPU) seconds per stage of one photo at the training size."""
    renderer = setup.renderer("model")
    image = read_image(path)
    (mask,) = segment_masks(setup.segmenter, [image], renderer.mask_resolution)
    rendering = renderer.prepare(image, mask)
    (generated,) = renderer.generate([rendering.source], "severe")
    small = [
        cv2.resize(image, (512, round(512 * image.shape[0] / image.shape[1])), interpolation=cv2.INTER_AREA)
    ]
    stages = {
        "decode": lambda: read_image(path),
        "segmenter (model only)": lambda: setup.segmenter.segmenter.probabilities_batch(small),
        "segment + mask clean-up + upsample": lambda: segment_masks(setup.segmenter, [image], 512),
        "crop + resize to generator": lambda: renderer.prepare(image, mask),
        "generator": lambda: renderer.generate([rendering.source], "severe"),
        "composite (+ feather)": lambda: composite(
            image, mask, rendering.square, rendering.source, generated, feather=renderer.feather
        ),
        "encode + write": lambda: write_output(setup.out, image, quality=95),
        "end to end": lambda: setup.end_to_end(path, "model"),
    }
    return {name: timed(fn, repeats) for name, fn in stages.items()}


def one_case(args: argparse.Namespace) -> None:
    """Child process: one (photo, gan-size) end to end; prints JSON with time and peak memory."""
    if args.threads:
        torch.set_num_threads(args.threads)
    setup = Setup(Path(args.folder), args)
    gan_size: int | str = args.case_size if args.case_size in ("model", "native") else int(args.case_size)
    path = setup.photos[args.case_photo]
    wall, cpu = timed(lambda: setup.end_to_end(path, gan_size), args.repeats)
    with PeakMemory() as memory:
        setup.end_to_end(path, gan_size)
    image = read_image(path)
    output = setup.end_to_end(path, gan_size) if args.detail else None
    result = {"wall": wall, "cpu": cpu, "peak_mib": memory.mib, "side": None}
    renderer = setup.renderer(gan_size)
    (mask,) = segment_masks(setup.segmenter, [image], renderer.mask_resolution)
    result["side"] = renderer.prepare(image, mask).source.shape[0]
    if output is not None:
        result["detail"] = high_frequency_energy(image, output, mask)
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--base-channels", type=int, default=64)
    parser.add_argument("--blocks", type=int, default=9)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--skip-12mp-native", action="store_true", help="the slowest case (minutes on a CPU)")
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--case-photo", help=argparse.SUPPRESS)
    parser.add_argument("--case-size", help=argparse.SUPPRESS)
    parser.add_argument("--detail", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case_photo:
        one_case(args)
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; figures are for this machine only")
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        setup = Setup(folder, args)
        one = torch.rand(1, 3, args.size, args.size)
        fp32 = Translator.load(setup.gan, device="cpu", precision="fp32")
        bf16 = Translator.load(setup.gan, device="cpu", precision="bf16")
        generator = {
            "fp32 eager": timed(lambda: fp32.to_level(one, "severe"), args.repeats),
            "bf16 autocast": timed(lambda: bf16.to_level(one, "severe"), args.repeats),
        }
        try:
            from corrode.gan.onnx import OnnxTranslator

            onnx = OnnxTranslator.from_translator(fp32, ["severe"])
            generator["onnx runtime"] = timed(lambda: onnx.to_level(one, "severe"), args.repeats)
        except Exception as exc:  # noqa: BLE001 - a missing optional engine is reported, not fatal
            print(f"onnx runtime: not measured ({exc})")
        print(
            f"\n1. generator alone, 1 image at {args.size} px "
            f"({args.base_channels} channels, {args.blocks} blocks):"
        )
        for name, (wall, cpu) in generator.items():
            print(f"  {name:14s} wall {wall * 1000:8.1f} ms   cpu {cpu * 1000:8.1f} ms")
        engine = "bf16 autocast" if setup.precision == "bf16" else "fp32 eager"
        print(f"  render's choice here: {engine}")

        for label, path in setup.photos.items():
            stages = profile(setup, path, args.repeats)
            print(f"\n2. profile at {label}, training size ({args.size} px), wall / cpu ms:")
            for name, (wall, cpu) in stages.items():
                print(f"  {name:36s} {wall * 1000:8.1f} {cpu * 1000:8.1f}")
            wall, cpu = stages["end to end"]
            generator_wall, generator_cpu = stages["generator"]
            print(
                f"  end to end / generator alone: {wall / generator_wall:.2f} (wall), "
                f"{cpu / generator_cpu:.2f} (cpu)" + ("   goal <= 1.25" if label == "1 MP" else "")
            )

        print("\n3. --gan-size: end to end per photo (own process each), peak memory over its baseline")
        details = {}
        for label in setup.photos:
            for size in ("model", "512", "native"):
                if label == "12 MP" and size == "native" and args.skip_12mp_native:
                    print(f"  {label:6s} {size:7s} skipped (--skip-12mp-native)")
                    continue
                repeats = 1 if size != "model" else args.repeats
                command = [sys.executable, __file__, "--folder", str(folder), "--case-photo", label]
                command += ["--case-size", size, "--repeats", str(repeats), "--size", str(args.size)]
                command += ["--base-channels", str(args.base_channels), "--blocks", str(args.blocks)]
                command += ["--threads", str(args.threads)] + (["--detail"] if label == "1 MP" else [])
                done = subprocess.run(command, capture_output=True, text=True, check=False)
                if done.returncode != 0:
                    print(f"  {label:6s} {size:7s} failed: {done.stderr.strip().splitlines()[-1:]}")
                    continue
                result = json.loads(done.stdout.strip().splitlines()[-1])
                if "detail" in result:
                    details[size] = result
                    print(f"  {label:6s} {size:7s} detail (high-frequency energy) {result['detail']:.3e}")
                print(
                    f"  {label:6s} {size:7s} working side {result['side']:5d} px: "
                    f"wall {result['wall']:7.2f} s, cpu {result['cpu']:7.2f} s, "
                    f"peak +{result['peak_mib']:7.0f} MiB"
                )
        if details:
            print("\n4. detail: high-frequency energy of (output - input) inside the car, 1 MP photo")
            base = details.get("model", {}).get("detail")
            for size, result in details.items():
                ratio = f" ({result['detail'] / base:.1f}x the training size)" if base else ""
                print(f"  {size:7s} {result['detail']:.3e}{ratio}")


if __name__ == "__main__":
    main()

"""How fast `corrode render` is on this machine, and how much it costs beyond the generator itself.

    python benchmarks/render.py [--repeats 5] [--size 256] [--base-channels 64] [--blocks 9] [--threads N]

Models: a generator set of the paper's size (64 channels, 9 residual blocks, attention as in the
`recommended` preset) at 256 px and the paper's segmenter (MobileNetV2 width 1.0, 256 px), both
with random weights (speed does not depend on the values), saved and loaded through the real
`Translator.load` / `Segmenter.load`. The segmenter runs for real on every photo; its (untrained)
probability map is then swapped for a car-shaped one so the rest of the pipeline sees a real car.

Prints
- generator alone, one 256 px image: fp32 eager, bf16 autocast, ONNX Runtime;
- end to end per photo (read JPEG, segment, threshold + optimize, crop, generate, composite, write
  JPEG), 1 MP and 12 MP, with the engine render picks by default, and the ratio end-to-end /
  generator-alone (goal <= 1.25 at 1 MP);
- images per second for a batch of 32 photos of 1 MP through `render()`.
Times are the median of `--repeats` runs after one warm-up, as wall time and as this process's CPU
time (on a machine shared with other jobs the CPU time is the steadier figure; `--threads 1` keeps
busy-waiting thread pools from inflating it).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch

from corrode.checkpoint import save_model
from corrode.config import to_dict
from corrode.images import read_image, write_image
from corrode.models.cyclegan import CycleGanConfig, GeneratorSet
from corrode.models.unet import CarSegmenter, SegmenterConfig
from corrode.render import Models, RenderConfig, Renderer, fast_precision, generator_precision, render
from corrode.segment import Segmenter
from corrode.translate import Translator

PHOTO = Path(__file__).resolve().parent.parent / "examples" / "photos" / "blue_sedan.jpg"


CPU_TIMES: dict[int, float] = {}


def timed(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time; the median CPU time of the same runs goes to CPU_TIMES[id(fn)]."""
    fn()
    times, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    CPU_TIMES[id(fn)] = statistics.median(cpu)
    return statistics.median(times)


def timed_both(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    wall = timed(fn, repeats)
    return wall, CPU_TIMES[id(fn)]


class CarShapedSegmenter:
    """Runs the real segmenter, then hands back a car-shaped map in place of the untrained one."""

    def __init__(self, segmenter: Segmenter, shape_of: Callable[[np.ndarray], np.ndarray]) -> None:
        self.segmenter = segmenter
        self.shape_of = shape_of

    def probabilities_batch(self, images: list[np.ndarray]) -> list[np.ndarray]:
        self.segmenter.probabilities_batch(images)
        return [self.shape_of(image) for image in images]


def car_map(reference_mask: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    def shape_of(image: np.ndarray) -> np.ndarray:
        height, width = image.shape[:2]
        resized = cv2.resize(
            reference_mask.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR
        )
        return np.clip(resized * 0.9 + 0.05, 0, 1).astype(np.float32)

    return shape_of


def reference_mask(image: np.ndarray) -> np.ndarray:
    """The sedan photo's car, found by colour (it is bright blue on grass and sky)."""
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
    blue = (hsv[..., 0] > 100) & (hsv[..., 0] < 130) & (hsv[..., 1] > 120)
    dark = hsv[..., 2] < 60
    rows, cols = np.nonzero(blue)
    box = np.zeros_like(blue)
    box[rows.min() : rows.max() + 60, cols.min() : cols.max()] = True
    return (blue | dark) & box


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--base-channels", type=int, default=64)
    parser.add_argument("--blocks", type=int, default=9)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; machine shared with other jobs: "
        "figures are indicative"
    )

    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        gan_config = CycleGanConfig(
            base_channels=args.base_channels, residual_blocks=args.blocks, attention=True
        )
        gan = save_model(
            folder / "gan.safetensors",
            GeneratorSet(gan_config),
            kind="gan",
            config={"model": to_dict(gan_config), "image_size": args.size},
        )
        seg_config = SegmenterConfig(size=args.size)
        seg = save_model(
            folder / "seg.safetensors", CarSegmenter(seg_config), kind="seg", config=to_dict(seg_config)
        )

        fp32 = Translator.load(gan, device="cpu", precision="fp32")
        bf16 = Translator.load(gan, device="cpu", precision="bf16")
        one = torch.rand(1, 3, args.size, args.size)
        generator = {
            "fp32 eager": timed_both(lambda: fp32.to_level(one, "severe"), args.repeats),
            "bf16 autocast": timed_both(lambda: bf16.to_level(one, "severe"), args.repeats),
        }
        try:
            from corrode.gan.onnx import OnnxTranslator

            started = time.perf_counter()
            onnx = OnnxTranslator.from_translator(fp32, ["severe"])
            export = time.perf_counter() - started
            generator["onnx runtime"] = timed_both(lambda: onnx.to_level(one, "severe"), args.repeats)
        except Exception as exc:  # noqa: BLE001 - a missing optional engine is reported, not fatal
            print(f"onnx runtime: not measured ({exc})")
            export = float("nan")
        print(
            f"\ngenerator alone, 1 image at {args.size} px "
            f"({args.base_channels} channels, {args.blocks} blocks); wall and process CPU time:"
        )
        base_wall, base_cpu = generator["fp32 eager"]
        for name, (wall, cpu) in generator.items():
            print(
                f"  {name:14s} wall {wall * 1000:8.1f} ms ({base_wall / wall:.2f}x fp32)   "
                f"cpu {cpu * 1000:8.1f} ms ({base_cpu / cpu:.2f}x fp32)"
            )
        print(f"  (ONNX export at load time: {export:.1f} s)")

        cfg = RenderConfig(gan=str(gan), seg=str(seg), device="cpu")
        chosen = generator_precision(cfg)
        translator = bf16 if chosen == "bf16" else fp32
        engine_name = "bf16 autocast" if chosen == "bf16" else "fp32 eager"
        print(f"\nrender's default engine here: {engine_name} (segmenter at {fast_precision(cfg)})")
        segmenter = Segmenter.load(seg, device="cpu", precision=fast_precision(cfg))
        photo = read_image(PHOTO)
        shaped = CarShapedSegmenter(segmenter, car_map(reference_mask(photo)))
        renderer = Renderer(translator, shaped)
        inputs = {"1 MP": folder / "photo_1mp.jpg", "12 MP": folder / "photo_12mp.jpg"}
        write_image(inputs["1 MP"], photo, quality=92)
        write_image(
            inputs["12 MP"], cv2.resize(photo, (4000, 3000), interpolation=cv2.INTER_CUBIC), quality=92
        )

        def end_to_end(path: Path) -> None:
            image = read_image(path)
            (rendering,) = renderer.render([image], ["severe"])
            write_image(folder / "out.jpg", rendering.outputs["severe"], quality=95)

        alone_wall, alone_cpu = generator[engine_name]
        print("end to end per photo, one level (read, segment, mask, crop, generate, composite, write):")
        for label, path in inputs.items():
            wall, cpu = timed_both(lambda path=path: end_to_end(path), args.repeats)
            print(
                f"  {label:6s} wall {wall * 1000:8.1f} ms, cpu {cpu * 1000:8.1f} ms   "
                f"end-to-end / generator-alone = {wall / alone_wall:.2f} (wall), {cpu / alone_cpu:.2f} (cpu)"
                + ("   goal <= 1.25" if label == "1 MP" else "")
            )

        batch = folder / "batch"
        batch.mkdir()
        for index in range(args.batch):
            (batch / f"photo{index:02d}.jpg").write_bytes(inputs["1 MP"].read_bytes())
        models = Models(translator, shaped, [])
        for batch_size in (1, 8):
            out = folder / f"out{batch_size}"
            run = RenderConfig(inputs=(str(batch),), out_dir=out, batch_size=batch_size)
            started, started_cpu = time.perf_counter(), time.process_time()
            summary = render(run, models=models)
            seconds, cpu = time.perf_counter() - started, time.process_time() - started_cpu
            assert summary.written == args.batch, summary.line()
            print(
                f"batch of {args.batch} photos (1 MP), --batch-size {batch_size}: {seconds:.1f} s, "
                f"{args.batch / seconds:.2f} images/s (cpu {cpu:.1f} s)"
            )


if __name__ == "__main__":
    main()

"""`corrode render`: a user's own photo back, same size and background, with the car corroded.

Per photo: read (EXIF-aware) -> segment the car (or take a given mask) -> adaptive threshold +
mask optimizer -> crop the car's box with a margin, pad to a square, resize to the generator's
size, black out the background as in training -> generator none -> LEVEL -> resize the change back
-> composite onto the original with a feathered mask edge. The feather lies inside the car mask, so
every pixel outside the mask keeps its exact original value; the output has the input's size.

Big images stay cheap: segmentation and mask cleaning run on a copy at most `mask_resolution`
pixels on its long side, and the full-resolution work touches only the car's square.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TextIO

import cv2
import numpy as np

from corrode import levels
from corrode.batch import Outcome, Summary, collect_inputs, output_path, previous_outputs
from corrode.config import require
from corrode.errors import CorrodeError, FileError, UsageError
from corrode.images import ImageError, atomic_path, read_image, read_mask, write_image

if TYPE_CHECKING:
    import torch

    from corrode.distributed import DistContext

ENGINES = ("auto", "torch", "onnx")
GRID_TAG = "grid"
DEMO_NOTE = "demo models: trained on synthetic cars, expect cartoon-like rust on real photos"


@dataclass(frozen=True)
class RenderConfig:
    inputs: tuple[str, ...] = ()
    levels: tuple[str, ...] = ("severe",)
    gan: str | None = None
    seg: str | None = None
    # A mask file (one input) or a folder of masks named by the inputs' stems, instead of the seg model.
    mask: Path | None = None
    out_dir: Path | None = None
    out: Path | None = None
    suffix: str | None = None
    composite: bool = True
    grid: bool = False
    timeline: Path | None = None
    timeline_frames: int = 8
    timeline_size: int = 512
    timeline_ms: int = 90
    recursive: bool = False
    overwrite: bool = False
    # Margin around the car's box on each side, as a fraction of the box's longer side.
    margin: float = 0.08
    # Width of the soft edge inside the car mask, in generator pixels (scaled to the photo).
    feather: float = 2.0
    # Add the generator's change to the photo (keeps the photo's fine detail) instead of pasting.
    keep_detail: bool = True
    mask_resolution: int = 512
    # Photos per generator call; 0 picks 1 on the CPU (measured faster than 8 there) and 8 on a GPU.
    batch_size: int = 0
    device: str = "auto"
    precision: str = "auto"
    engine: str = "auto"
    quality: int = 95

    def __post_init__(self) -> None:
        for name in self.levels:
            level = levels.get(name)
            require(
                level in levels.RUSTY, f"--level {name}: render one of {', '.join(levels.RUSTY_NAMES)} or all"
            )
        require(len(self.levels) > 0, "at least one level to render")
        require(0.0 <= self.margin <= 2.0, f"margin {self.margin} must be between 0 and 2")
        require(self.feather >= 0, f"feather {self.feather} must be >= 0")
        require(self.mask_resolution >= 32, f"mask_resolution {self.mask_resolution} must be >= 32")
        require(self.batch_size >= 0, f"batch_size {self.batch_size} must be >= 0 (0: automatic)")
        require(self.timeline_frames >= 1, f"timeline_frames {self.timeline_frames} must be >= 1")
        require(self.timeline_size >= 16, f"timeline_size {self.timeline_size} must be >= 16")
        require(self.timeline_ms >= 10, f"timeline_ms {self.timeline_ms} must be >= 10")
        require(self.engine in ENGINES, f"engine {self.engine!r}: expected one of {', '.join(ENGINES)}")
        require(1 <= self.quality <= 100, f"quality {self.quality} must be between 1 and 100")
        if self.timeline is not None:
            require(self.timeline.suffix.lower() == ".gif", f"{self.timeline}: the timeline is a .gif file")
        require(not (self.out is not None and self.out_dir is not None), "give --out or --out-dir, not both")

    @property
    def level_names(self) -> tuple[str, ...]:
        return tuple(levels.get(name).name for name in self.levels)


class Segments(Protocol):
    """What render needs from a segmenter (corrode.segment.Segmenter fits)."""

    def probabilities_batch(self, images: list[np.ndarray]) -> list[np.ndarray]: ...


class Translates(Protocol):
    """What render needs from a translator (corrode.translate.Translator fits)."""

    image_size: int

    def to_level(self, images: torch.Tensor, level: str) -> torch.Tensor: ...


class NoCarError(ImageError):
    """The segmenter found no car in a photo (or a given mask is empty)."""


# ---------------------------------------------------------------------------------------------
# Geometry and compositing: numpy / OpenCV, no torch.


@dataclass(frozen=True)
class Square:
    """A square window on an image, which may reach past its borders (padded with black)."""

    x0: int
    y0: int
    side: int

    def inside(self, width: int, height: int) -> tuple[int, int, int, int]:
        """The window clipped to the image: (x0, y0, x1, y1) in image pixels."""
        return (
            max(0, self.x0),
            max(0, self.y0),
            min(width, self.x0 + self.side),
            min(height, self.y0 + self.side),
        )


def car_square(mask: np.ndarray, margin: float) -> Square:
    """The square around the mask's bounding box, grown by `margin` x its longer side on each side."""
    x, y, w, h = cv2.boundingRect(np.ascontiguousarray(mask, dtype=np.uint8))
    if w == 0 or h == 0:
        raise ValueError("empty mask")
    side = max(1, math.ceil(max(w, h) * (1 + 2 * margin)))
    return Square(x + w // 2 - side // 2, y + h // 2 - side // 2, side)


def crop_square(image: np.ndarray, square: Square) -> np.ndarray:
    """The `square` window of `image`, black where it reaches past the borders."""
    height, width = image.shape[:2]
    x0, y0, x1, y1 = square.inside(width, height)
    window = image[y0:y1, x0:x1]
    top, left = y0 - square.y0, x0 - square.x0
    bottom, right = square.side - top - (y1 - y0), square.side - left - (x1 - x0)
    if top or left or bottom or right:
        window = cv2.copyMakeBorder(window, top, bottom, left, right, cv2.BORDER_CONSTANT, value=0)
    return window


def resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """cv2 resize to (width, height): area filter to shrink, bilinear to grow."""
    if image.shape[1] == size[0] and image.shape[0] == size[1]:
        return image
    shrinking = size[0] <= image.shape[1] and size[1] <= image.shape[0]
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def generator_input(
    image: np.ndarray, mask: np.ndarray, square: Square, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """The car's square resized to `size`, background black as in training: `(S, S, 3)` float32 in
    [0, 1], and the `(S, S)` bool mask applied to it."""
    crop = resize(crop_square(image, square), (size, size))
    mask_crop = crop_square(mask.astype(np.uint8), square)
    # Training resizes the image with the area filter and the mask with nearest, then multiplies.
    small_mask = cv2.resize(mask_crop, (size, size), interpolation=cv2.INTER_NEAREST) > 0
    return crop.astype(np.float32) * (1.0 / 255.0) * small_mask[:, :, None], small_mask


def feather_alpha(mask: np.ndarray, width: float) -> np.ndarray:
    """float32 weights: 0 outside `mask` and on its edge, rising smoothly to 1 `width` pixels inside."""
    inside = np.ascontiguousarray(mask, dtype=np.uint8)
    if width <= 0:
        return inside.astype(np.float32)
    distance = cv2.distanceTransform(inside, cv2.DIST_L2, 3)
    ramp = np.clip(distance * (1.0 / width), 0.0, 1.0)
    return ramp * ramp * (3.0 - 2.0 * ramp)


def composite(
    image: np.ndarray,
    mask: np.ndarray,
    square: Square,
    source: np.ndarray,
    generated: np.ndarray,
    *,
    feather: float,
    keep_detail: bool = True,
) -> np.ndarray:
    """The photo with the generated car blended in; pixels outside `mask` keep their exact values.

    `source` is what the generator saw and `generated` what it made, both `(S, S, 3)` float in
    [0, 1] for the window `square`. With `keep_detail`, the generator's change (generated -
    source), resized to the photo, is added to the photo, so the car keeps its own sharp detail
    where the generator left it alone; otherwise the resized generated car replaces the photo's.
    `feather` is the soft edge's width in generator pixels.
    """
    x, y, w, h = cv2.boundingRect(np.ascontiguousarray(mask, dtype=np.uint8))
    if w == 0 or h == 0:
        return image.copy()
    size = generated.shape[0]
    # Only the mask's box changes: resample the generator's output straight into it (an inverse
    # affine map with cv2.resize's half-pixel convention) instead of resizing the whole square.
    k = size / square.side
    to_generator = np.float32(
        [[k, 0, (x - square.x0 + 0.5) * k - 0.5], [0, k, (y - square.y0 + 0.5) * k - 0.5]]
    )
    change = (generated - source) if keep_detail else generated
    full = cv2.warpAffine(
        np.ascontiguousarray(change, dtype=np.float32),
        to_generator,
        (w, h),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )
    alpha = feather_alpha(mask[y : y + h, x : x + w], feather / k)
    window = image[y : y + h, x : x + w]
    original = window.astype(np.float32)
    weight = alpha[:, :, None]
    if keep_detail:
        blended = original + full * (255.0 * weight)
    else:
        blended = original + (full * 255.0 - original) * weight
    blended = np.clip(np.rint(blended, out=blended), 0, 255).astype(np.uint8)
    result = image.copy()
    # Only where the weight is above zero: elsewhere the photo's own bytes, untouched by rounding.
    result[y : y + h, x : x + w] = np.where(weight > 0, blended, window)
    return result


def to_uint8(array: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(array * 255.0), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# Masks from the segmenter.


def segment_masks(segmenter: Segments, images: Sequence[np.ndarray], resolution: int) -> list[np.ndarray]:
    """Full-resolution bool car masks: segment and clean at most `resolution` px, then upsample."""
    from corrode.masks import optimize_mask, threshold_probability

    small = []
    for image in images:
        height, width = image.shape[:2]
        scale = min(1.0, resolution / max(height, width))
        small.append(resize(image, (max(1, round(width * scale)), max(1, round(height * scale)))))
    probabilities = segmenter.probabilities_batch(small)
    masks = []
    for image, probability in zip(images, probabilities, strict=True):
        mask, _ = threshold_probability(probability)
        cleaned = optimize_mask(mask).mask
        height, width = image.shape[:2]
        if cleaned.shape != (height, width):
            # Bilinear on 0/255 then a 50% cut gives smooth edges instead of blocky upscaled pixels.
            grown = cv2.resize(
                cleaned.astype(np.uint8) * 255, (width, height), interpolation=cv2.INTER_LINEAR
            )
            cleaned = grown > 127
        masks.append(cleaned)
    return masks


# ---------------------------------------------------------------------------------------------
# The renderer: models loaded once, photos in, composites out.


@dataclass
class Rendering:
    """One photo rendered at several levels: full-size composites (or masked squares) per level."""

    image: np.ndarray
    mask: np.ndarray
    square: Square
    source: np.ndarray
    source_mask: np.ndarray
    composited: bool = True
    generated: dict[str, np.ndarray] = field(default_factory=dict)
    outputs: dict[str, np.ndarray] = field(default_factory=dict)


class Renderer:
    """Turns photos (+ masks or a segmenter) into renderings, batching the generator calls."""

    def __init__(
        self,
        translator: Translates,
        segmenter: Segments | None = None,
        *,
        margin: float = 0.08,
        feather: float = 2.0,
        keep_detail: bool = True,
        mask_resolution: int = 512,
        composite: bool = True,
    ) -> None:
        self.translator = translator
        self.segmenter = segmenter
        self.margin = margin
        self.feather = feather
        self.keep_detail = keep_detail
        self.mask_resolution = mask_resolution
        self.composite = composite

    @classmethod
    def from_config(cls, cfg: RenderConfig, translator: Translates, segmenter: Segments | None) -> Renderer:
        return cls(
            translator,
            segmenter,
            margin=cfg.margin,
            feather=cfg.feather,
            keep_detail=cfg.keep_detail,
            mask_resolution=cfg.mask_resolution,
            composite=cfg.composite,
        )

    @property
    def size(self) -> int:
        return int(self.translator.image_size)

    def masks(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        if self.segmenter is None:
            raise UsageError("no segmentation model and no --mask: cannot find the car")
        return segment_masks(self.segmenter, images, self.mask_resolution)

    def generate(self, sources: Sequence[np.ndarray], level: str) -> list[np.ndarray]:
        """`(S, S, 3)` float inputs -> the generator's `(S, S, 3)` float outputs at `level`."""
        import torch

        batch = torch.from_numpy(np.stack(sources)).permute(0, 3, 1, 2).contiguous()
        with torch.inference_mode():
            result = self.translator.to_level(batch, level)
        result = result.detach().float().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()
        return list(result)

    def prepare(self, image: np.ndarray, mask: np.ndarray) -> Rendering:
        if mask.shape != image.shape[:2]:
            raise ValueError(
                f"mask is {mask.shape[1]}x{mask.shape[0]} but the photo is {image.shape[1]}x{image.shape[0]}"
            )
        if not mask.any():
            raise ValueError("no car found (the mask is empty)")
        square = car_square(mask, self.margin)
        source, source_mask = generator_input(image, mask, square, self.size)
        return Rendering(image, mask, square, source, source_mask, composited=self.composite)

    def render(
        self,
        images: Sequence[np.ndarray],
        level_names: Sequence[str],
        masks: Sequence[np.ndarray] | None = None,
    ) -> list[Rendering]:
        """Render each image at each level; `masks` (bool, image-sized) skip the segmenter."""
        masks = list(masks) if masks is not None else self.masks(images)
        renderings = [self.prepare(image, mask) for image, mask in zip(images, masks, strict=True)]
        self.finish(renderings, level_names)
        return renderings

    def finish(self, renderings: Sequence[Rendering], level_names: Sequence[str]) -> None:
        """Run the generator for prepared renderings (one batch per level) and composite."""
        if not renderings:
            return
        sources = [r.source for r in renderings]
        for name in level_names:
            for rendering, generated in zip(renderings, self.generate(sources, name), strict=True):
                # The generator never sees the background: keep it black in the masked output too.
                rendering.generated[name] = generated * rendering.source_mask[:, :, None]
                if self.composite:
                    rendering.outputs[name] = composite(
                        rendering.image,
                        rendering.mask,
                        rendering.square,
                        rendering.source,
                        generated,
                        feather=self.feather,
                        keep_detail=self.keep_detail,
                    )
                else:
                    rendering.outputs[name] = to_uint8(rendering.generated[name])


# ---------------------------------------------------------------------------------------------
# Grid and timeline.


def grid_image(rendering: Rendering, level_names: Sequence[str]) -> np.ndarray:
    """Original and each level side by side, labelled."""
    from corrode.grids import contact_sheet

    original = first_stage(rendering)
    row = [original] + [rendering.outputs[name] for name in level_names]
    labels = [f"original ({levels.CLEAN.name})", *level_names]
    cell, cell_height = cell_size(original, 512)
    return contact_sheet([row], column_labels=labels, cell=cell, cell_height=cell_height)


def cell_size(image: np.ndarray, longest: int) -> tuple[int, int]:
    """Grid cell (width, height) with the image's aspect ratio, its longer side at most `longest`."""
    height, width = image.shape[:2]
    scale = min(1.0, longest / max(height, width))
    return max(1, round(width * scale)), max(1, round(height * scale))


def first_stage(rendering: Rendering) -> np.ndarray:
    """The photo itself, or the masked square the generator saw (for --no-composite)."""
    return rendering.image if rendering.composited else to_uint8(rendering.source)


def ease(t: float) -> float:
    """Smoothstep: slow out of one level, slow into the next."""
    t = min(1.0, max(0.0, t))
    return t * t * (3.0 - 2.0 * t)


def timeline_frame_count(steps: int, frames_per_step: int) -> int:
    return steps * frames_per_step + 1


def timeline_frames(
    stages: Sequence[np.ndarray], frames_per_step: int, *, size: int, labels: Sequence[str] | None = None
) -> list[np.ndarray]:
    """Frames easing from each stage image to the next (all the same shape), at most `size` px."""
    from PIL import Image, ImageDraw

    from corrode.grids import _font

    height, width = stages[0].shape[:2]
    scale = min(1.0, size / max(height, width))
    dims = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = [resize(stage, dims).astype(np.float32) for stage in stages]
    font = _font(max(12, dims[1] // 24))
    frames = []
    for step in range(len(small) - 1):
        for index in range(frames_per_step):
            weight = ease(index / frames_per_step)
            frames.append((small[step] * (1 - weight) + small[step + 1] * weight, step + round(weight)))
    frames.append((small[-1], len(small) - 1))
    result = []
    for array, stage in frames:
        frame = Image.fromarray(np.clip(np.rint(array), 0, 255).astype(np.uint8))
        if labels:
            draw = ImageDraw.Draw(frame)
            draw.text(
                (8, 6), labels[stage], fill=(255, 255, 255), font=font, stroke_width=2, stroke_fill=(0, 0, 0)
            )
        result.append(np.asarray(frame))
    return result


def write_gif(path: Path, frames: Sequence[np.ndarray], frame_ms: int, *, hold: int = 6) -> Path:
    """An endlessly looping GIF; frames landing exactly on a level are held `hold` times longer."""
    from PIL import Image

    images = [Image.fromarray(frame) for frame in frames]
    durations = [frame_ms] * len(images)
    durations[0] = durations[-1] = frame_ms * hold
    with atomic_path(path) as temp:
        images[0].save(
            temp, format="GIF", save_all=True, append_images=images[1:], duration=durations, loop=0
        )
    return path


def timeline_stages(rendering: Rendering) -> tuple[list[np.ndarray], list[str]]:
    names = list(levels.RUSTY_NAMES)
    missing = [name for name in names if name not in rendering.outputs]
    if missing:
        raise ValueError(f"the timeline needs every level; missing {', '.join(missing)}")
    return [first_stage(rendering)] + [rendering.outputs[name] for name in names], list(levels.NAMES)


# ---------------------------------------------------------------------------------------------
# Models.


@dataclass
class Models:
    translator: Translates
    segmenter: Segments | None
    notes: list[str]


def load_models(cfg: RenderConfig, *, need_segmenter: bool) -> Models:
    """The generator (and the segmenter unless masks are given) named by `cfg`, loaded once."""
    from corrode.locate import DEMO, find_model

    notes = []
    gan_path = find_model(cfg.gan, "gan")
    seg_value = cfg.seg if cfg.seg is not None else (DEMO if cfg.gan == DEMO else None)
    # Find both before loading either, so a missing model is reported at once.
    seg_path = find_model(seg_value, "seg") if need_segmenter else None
    from corrode.translate import Translator

    precision = generator_precision(cfg)
    translator = Translator.load(gan_path, device=cfg.device, precision=precision)
    if cfg.gan == DEMO:
        notes.append(f"--gan demo: {DEMO_NOTE}")
    missing = [name for name in cfg.level_names if name not in translator.levels]
    if missing:
        raise UsageError(f"{gan_path}: this model cannot render {', '.join(missing)}")
    engine: Translates = fast_translator(translator, cfg.engine, cfg.level_names)
    segmenter: Segments | None = None
    if need_segmenter:
        from corrode.segment import Segmenter

        # `--gan demo` brings the demo segmenter along unless --seg says otherwise.
        segmenter = Segmenter.load(seg_path, device=cfg.device, precision=fast_precision(cfg))
        if seg_value == DEMO and cfg.gan != DEMO:
            notes.append(f"--seg demo: {DEMO_NOTE}")
    return Models(engine, segmenter, notes)


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX): then autocast roughly halves
    the generator's time; elsewhere bf16 is emulated and slower than fp32."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="ascii", errors="ignore")
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def fast_precision(cfg: RenderConfig) -> str:
    """`--precision auto` on a CPU with native bf16 means bf16 autocast (measured ~2x faster than
    fp32 in benchmarks/render.py, about one grey level of difference); otherwise as given."""
    if cfg.precision != "auto":
        return cfg.precision
    from corrode.device import choose_device

    if choose_device(cfg.device).type == "cpu" and cpu_has_fast_bf16():
        return "bf16"
    return cfg.precision


def generator_precision(cfg: RenderConfig) -> str:
    """The generator's precision: fp32 when ONNX Runtime runs it, else `fast_precision`."""
    return "fp32" if cfg.engine == "onnx" else fast_precision(cfg)


def fast_translator(translator: Translates, engine: str, level_names: Sequence[str]) -> Translates:
    """The translator itself (`torch`, and `auto`: bf16 autocast where the CPU has it beat ONNX
    Runtime in benchmarks/render.py), or an ONNX Runtime copy of its generators (`onnx`)."""
    if engine in ("auto", "torch"):
        return translator
    from corrode.onnx_engine import OnnxTranslator

    return OnnxTranslator.from_translator(translator, level_names)


# ---------------------------------------------------------------------------------------------
# The batch work function.


@dataclass
class _Job:
    index: int
    path: Path
    outputs: dict[str, Path]


def _mask_for(cfg: RenderConfig, path: Path, single: bool) -> Path:
    assert cfg.mask is not None
    if cfg.mask.is_file():
        if not single:
            raise UsageError(f"--mask {cfg.mask}: one mask file fits one input; give a folder of masks")
        return cfg.mask
    if cfg.mask.is_dir():
        for stem in (path.stem, f"{path.stem}_mask"):
            for candidate in sorted(cfg.mask.glob(f"{stem}.*")):
                if candidate.is_file():
                    return candidate
        raise ImageError(path, f"no mask named {path.stem}.* or {path.stem}_mask.* in {cfg.mask}")
    raise UsageError(f"--mask {cfg.mask}: no such file or folder")


def plan_outputs(cfg: RenderConfig, path: Path, single_input: bool) -> dict[str, Path]:
    """Tag (level name or "grid") -> output path for one input."""
    tags = list(cfg.level_names) + ([GRID_TAG] if cfg.grid else [])
    single = single_input and len(tags) == 1
    return {
        tag: output_path(path, tag, out_dir=cfg.out_dir, out=cfg.out, single=single, suffix=cfg.suffix)
        for tag in tags
    }


def render(
    cfg: RenderConfig,
    *,
    models: Models | None = None,
    stdin: TextIO | None = None,
    context: DistContext | None = None,
    on_outcome: Callable[[Outcome], Any] | None = None,
    on_note: Callable[[str], Any] | None = None,
    progress: Callable[[int, int], Any] | None = None,
) -> Summary:
    """Render every input of `cfg`; per-file problems become failed outcomes, the rest go on.

    `models` are loaded from `cfg` when not given (tests pass stand-ins). Under torchrun
    (`context`), this rank renders inputs `rank, rank + world, ...` only. `on_outcome` sees each
    outcome as it happens; `progress(done, total)` counts inputs.
    """
    started = time.perf_counter()
    inputs = collect_inputs(
        cfg.inputs, recursive=cfg.recursive, stdin=stdin if stdin is not None else sys.stdin
    )
    tags = list(levels.RUSTY_NAMES) + [GRID_TAG]
    if cfg.out is None:
        stale = previous_outputs(inputs, tags)
        inputs = [p for p in inputs if p not in stale or (cfg.out_dir is not None and not _same_dir(p, cfg))]
    require_single = cfg.out is not None or cfg.timeline is not None
    if require_single and len(inputs) != 1:
        what = "--out" if cfg.out is not None else "--timeline"
        raise UsageError(f"{what} takes exactly one input photo, got {len(inputs)}; use --out-dir for many")
    if cfg.timeline is not None and set(cfg.level_names) != set(levels.RUSTY_NAMES):
        raise UsageError("--timeline shows every level: use it with --level all")
    protected = {p.resolve() for p in inputs}
    single_input = len(inputs) == 1
    jobs = [_Job(i, p, plan_outputs(cfg, p, single_input)) for i, p in enumerate(inputs)]
    if context is not None:
        from corrode.distributed import shard

        jobs = shard(jobs, context)
    summary = Summary(inputs=len(jobs))

    def emit(outcome: Outcome) -> None:
        summary.add(outcome)
        if on_outcome is not None:
            on_outcome(outcome)

    todo: list[_Job] = []
    for job in jobs:
        clash = [p for p in job.outputs.values() if p.resolve() in protected]
        if clash:
            emit(
                Outcome(
                    job.path,
                    clash[0],
                    None,
                    "failed",
                    f"{job.path}: output {clash[0]} would overwrite an input",
                )
            )
            continue
        pending = {t: p for t, p in job.outputs.items() if cfg.overwrite or not p.exists()}
        if cfg.timeline is not None and (cfg.overwrite or not cfg.timeline.exists()):
            pending.setdefault("timeline", cfg.timeline)
        for tag, path in job.outputs.items():
            if tag not in pending:
                emit(Outcome(job.path, path, tag, "skipped"))
        if pending:
            todo.append(_Job(job.index, job.path, pending))
        elif cfg.timeline is not None:
            emit(Outcome(job.path, cfg.timeline, "timeline", "skipped"))

    done = len(jobs) - len(todo)
    if progress is not None:
        progress(done, len(jobs))
    if todo and models is None:
        models = load_models(cfg, need_segmenter=cfg.mask is None)
        for line in models.notes:
            if on_note is not None:
                on_note(line)
    if todo:
        assert models is not None
        renderer = Renderer.from_config(cfg, models.translator, models.segmenter)
        batch_size = cfg.batch_size or automatic_batch_size(cfg.device)
        for start in range(0, len(todo), batch_size):
            chunk = todo[start : start + batch_size]
            _render_chunk(cfg, renderer, chunk, single_input, emit)
            done += len(chunk)
            if progress is not None:
                progress(done, len(jobs))
    summary.seconds = time.perf_counter() - started
    return summary


def automatic_batch_size(device: str) -> int:
    from corrode.device import choose_device

    return 8 if choose_device(device).type == "cuda" else 1


def _same_dir(path: Path, cfg: RenderConfig) -> bool:
    return cfg.out_dir is not None and path.parent.resolve() == cfg.out_dir.resolve()


def _failure(job: _Job, exc: Exception) -> Outcome:
    message = str(exc) if isinstance(exc, FileError) else f"{job.path}: {exc}"
    return Outcome(job.path, None, None, "failed", message)


def _render_chunk(
    cfg: RenderConfig,
    renderer: Renderer,
    chunk: list[_Job],
    single_input: bool,
    emit: Callable[[Outcome], Any],
) -> None:
    started = time.perf_counter()
    ready: list[tuple[_Job, np.ndarray, np.ndarray | None]] = []
    for job in chunk:
        try:
            image = read_image(job.path)
            mask = read_mask(_mask_for(cfg, job.path, single_input)) if cfg.mask is not None else None
            ready.append((job, image, mask))
        except (FileError, OSError, MemoryError) as exc:
            emit(_failure(job, exc))
    if not ready:
        return
    need_masks = [i for i, (_, _, mask) in enumerate(ready) if mask is None]
    masks: list[np.ndarray | None] = [mask for _, _, mask in ready]
    if need_masks:
        if renderer.segmenter is None:
            raise UsageError("no segmentation model and no --mask: cannot find the car")
        try:
            found = renderer.masks([ready[i][1] for i in need_masks])
        except CorrodeError:
            raise
        except Exception:
            # One bad photo must not sink the batch: retry one by one to pin the failure down.
            found = []
            for i in need_masks:
                try:
                    found.extend(renderer.masks([ready[i][1]]))
                except Exception as exc:  # noqa: BLE001 - reported per file
                    found.append(exc)  # type: ignore[arg-type]
        for i, value in zip(need_masks, found, strict=True):
            masks[i] = value
    prepared: list[tuple[_Job, Rendering]] = []
    for (job, image, _), mask in zip(ready, masks, strict=True):
        if isinstance(mask, Exception):
            emit(_failure(job, mask))
            continue
        try:
            prepared.append((job, renderer.prepare(image, mask)))
        except ValueError as exc:
            emit(_failure(job, NoCarError(job.path, str(exc))))
    renderer.finish([r for _, r in prepared], cfg.level_names)
    per_photo = (time.perf_counter() - started) / max(1, len(ready))
    for job, rendering in prepared:
        _write_outputs(cfg, job, rendering, per_photo, emit)


def _write_outputs(
    cfg: RenderConfig, job: _Job, rendering: Rendering, seconds: float, emit: Callable[[Outcome], Any]
) -> None:
    for tag, path in job.outputs.items():
        try:
            if tag == GRID_TAG:
                write_image(path, grid_image(rendering, cfg.level_names), quality=cfg.quality)
            elif tag == "timeline":
                stages, labels = timeline_stages(rendering)
                frames = timeline_frames(stages, cfg.timeline_frames, size=cfg.timeline_size, labels=labels)
                write_gif(path, frames, cfg.timeline_ms)
            else:
                write_image(path, rendering.outputs[tag], quality=cfg.quality)
            emit(Outcome(job.path, path, tag, "written", seconds=seconds))
        except (FileError, OSError, ValueError) as exc:
            emit(Outcome(job.path, path, tag, "failed", f"{path}: cannot write ({exc})"))

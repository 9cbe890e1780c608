"""`corrode render`'s configuration: one frozen dataclass, validated, as the CLI and the library take it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from corrode import levels
from corrode.config import require
from corrode.renderer import DEFAULT_MAX_SIDE, MODEL_SIZE, NATIVE_SIZE

ENGINES = ("auto", "torch", "onnx")
GRID_TAG = "grid"
DEMO_NOTE = "demo models: trained on synthetic cars, expect cartoon-like rust on real photos"


def parse_gan_size(value: str | int) -> int | str:
    """`--gan-size`: "model", "native", or a side in px (a multiple of 4, at least 16)."""
    text = str(value).strip().lower()
    if text in (MODEL_SIZE, NATIVE_SIZE):
        return text
    try:
        size = int(text)
    except ValueError:
        size = -1
    require(
        size >= 16 and size % 4 == 0,
        f"--gan-size {value}: give {MODEL_SIZE}, {NATIVE_SIZE}, or a side in px (a multiple of 4, >= 16)",
    )
    return size


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
    # The generator's working size: "model" (its training size), a side in px, or "native" (the car
    # square's own size, at most `max_side`). `tile`: tile side for big squares, 0 = by free memory.
    gan_size: int | str = MODEL_SIZE
    max_side: int = DEFAULT_MAX_SIDE
    tile: int = 0
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
        object.__setattr__(self, "gan_size", parse_gan_size(self.gan_size))
        require(self.max_side >= 16, f"max_side {self.max_side} must be >= 16")
        require(
            self.tile == 0 or (self.tile >= 64 and self.tile % 4 == 0),
            f"tile {self.tile}: 0 (automatic) or a multiple of 4, >= 64",
        )
        require(
            self.engine != "onnx" or self.gan_size == MODEL_SIZE,
            "--engine onnx runs the generator at its training size only: drop --gan-size or use torch",
        )
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

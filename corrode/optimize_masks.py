"""`optimize-masks`: car masks for a data set, and the masked images the GAN trains on.

For every image (level folders `none/ mild/ moderate/ severe/`, or a plain folder): the car
probability map from the segmenter at the image's own resolution, the adaptive threshold and the
paper's optimizer (`corrode.masks`), then

- `OUT/<level>/<stem>.png`: the image with its background black (what `train-gan` reads),
- `OUT/masks/<level>/<stem>.png`: the mask (`datasets.level_mask_path(image, OUT / "masks")` finds it),
- `OUT/masks.csv`: one row per image (size, threshold, mask area, holes filled, specks removed),
- `OUT/config.json`.

A plain folder gives `OUT/<stem>.png` and `OUT/masks/<stem>.png`. Inputs of one folder that share a
stem (photo.bmp, photo.tiff) are written as `<stem>_<suffix>.png`, so none overwrites another. With
`masks` (a folder of existing masks laid out like the images) no model is needed: only the optimizer
runs.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from corrode.config import require
from corrode.errors import CorrodeError, FileError, UsageError
from corrode.images import resolve_safely
from corrode.masks import CONNECTIVITIES, MaskError, optimize_mask, threshold_probability

MASKS_FOLDER = "masks"
CSV_NAME = "masks.csv"
CSV_COLUMNS = (
    "file",
    "level",
    "width",
    "height",
    "threshold",
    "area_fraction",
    "holes_filled",
    "specks_removed",
)
MASK_SUFFIXES = (".png", ".gif", ".bmp", ".webp", ".jpg", ".tif", ".tiff")


class ProbabilityModel(Protocol):
    """Anything that maps an `(H, W, 3)` uint8 image to an `(H, W)` float car probability in [0, 1]
    (`corrode.segment.Segmenter`, or a stand-in in tests)."""

    def probabilities(self, image: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class OptimizeMasksConfig:
    data: Path
    out: Path
    seg: str | None = None  # run folder, .safetensors file, "demo", or None for $CORRODE_HOME/seg
    masks: Path | None = None  # existing masks instead of a model
    fraction: float = 0.1
    connectivity: int = 1  # 1: 4-neighbour regions, 2: 8-neighbour
    device: str = "auto"
    batch_size: int = 8

    def __post_init__(self) -> None:
        require(0.0 <= self.fraction <= 1.0, f"fraction must lie in [0, 1], got {self.fraction}")
        require(self.connectivity in CONNECTIVITIES, f"connectivity must be 1 or 2, got {self.connectivity}")
        require(self.batch_size >= 1, f"batch_size must be at least 1, got {self.batch_size}")
        require(
            self.seg is None or self.masks is None,
            "give a segmentation model (--seg) or existing masks (--masks), not both",
        )


@dataclass(frozen=True)
class Item:
    """One input image and the level it belongs to ("" in a plain folder)."""

    path: Path
    level: str
    # The output files' stem: the input's own, or `<stem>_<suffix>` when several inputs of one folder
    # share a stem (photo.bmp, photo.tiff -> photo_bmp, photo_tiff), so that none overwrites another.
    name: str = ""

    @property
    def output_stem(self) -> str:
        return self.name or self.path.stem

    @property
    def relative(self) -> str:
        return f"{self.level}/{self.path.name}" if self.level else self.path.name


@dataclass
class OptimizeMasksResult:
    out: Path
    rows: list[dict[str, object]] = field(default_factory=list)  # the CSV rows, one per image done
    failed: list[str] = field(default_factory=list)  # one "path: reason" line per failed image

    @property
    def csv_path(self) -> Path:
        return self.out / CSV_NAME


def find_inputs(data: str | Path) -> list[Item]:
    """The images of `data`: its level folders if it has any, else the images directly in it."""
    from corrode import levels
    from corrode.datasets import DatasetError, find_levels
    from corrode.images import is_image_file

    data = Path(data)
    by_level = find_levels(data, required=())
    if by_level:
        items = [Item(path, name) for name in levels.NAMES for path in by_level.get(name, [])]
    else:
        items = [Item(p, "") for p in sorted(data.iterdir()) if p.is_file() and is_image_file(p)]
    stems: dict[tuple[str, str], int] = {}
    for item in items:
        stems[(item.level, item.path.stem)] = stems.get((item.level, item.path.stem), 0) + 1
    items = [
        Item(item.path, item.level, f"{item.path.stem}_{item.path.suffix.lstrip('.').lower()}")
        if stems[(item.level, item.path.stem)] > 1
        else item
        for item in items
    ]
    if not items:
        where = "its level folders" if by_level else "it"
        raise DatasetError(f"{data}: no images in {where} (expected none/ mild/ moderate/ severe/ or images)")
    return items


def output_paths(item: Item, out: Path) -> tuple[Path, Path]:
    """(masked image, mask) for one input."""
    folder = out / item.level if item.level else out
    masks = out / MASKS_FOLDER / item.level if item.level else out / MASKS_FOLDER
    return folder / f"{item.output_stem}.png", masks / f"{item.output_stem}.png"


def find_mask(item: Item, masks_root: Path) -> Path:
    """An existing mask for `item`: `masks_root[/<level>]/<stem>[_mask].<image suffix>`."""
    folder = masks_root / item.level if item.level else masks_root
    for stem in (item.path.stem, f"{item.path.stem}_mask"):
        for suffix in MASK_SUFFIXES:
            candidate = folder / f"{stem}{suffix}"
            if candidate.is_file():
                return candidate
    raise FileError(item.path, f"no mask for this image in {folder}")


def _probabilities(model: ProbabilityModel, images: Sequence[np.ndarray]) -> list[np.ndarray]:
    batch = getattr(model, "probabilities_batch", None)
    if batch is not None:
        return list(batch(list(images)))
    return [model.probabilities(image) for image in images]


def _mask_item(
    item: Item,
    image: np.ndarray,
    probability: np.ndarray | None,
    mask: np.ndarray | None,
    config: OptimizeMasksConfig,
) -> tuple[np.ndarray, dict[str, object]]:
    height, width = image.shape[:2]
    threshold: float | None = None
    if probability is not None:
        probability = np.asarray(probability)
        if probability.shape != (height, width):
            raise FileError(
                item.path, f"segmenter returned a {probability.shape} map for a {width}x{height} image"
            )
        mask, threshold = threshold_probability(probability)
    assert mask is not None
    result = optimize_mask(mask, config.fraction, config.connectivity)
    row = {
        "file": item.relative,
        "level": item.level,
        "width": width,
        "height": height,
        "threshold": "" if threshold is None else f"{threshold:.4f}",
        "area_fraction": f"{result.mask.mean():.6f}",
        "holes_filled": result.holes_filled,
        "specks_removed": result.specks_removed,
    }
    return result.mask, row


def _write(item: Item, out: Path, image: np.ndarray, mask: np.ndarray) -> None:
    from corrode.images import write_image, write_mask

    masked_path, mask_path = output_paths(item, out)
    try:
        write_mask(mask_path, mask)
        write_image(masked_path, np.where(mask[..., None], image, 0).astype(np.uint8))
    except OSError as exc:
        mask_path.unlink(missing_ok=True)  # never a mask without its masked image
        raise FileError(masked_path, f"cannot write ({exc.strerror or exc})") from exc


def _check_out(data: Path, out: Path) -> None:
    from corrode import levels

    resolved_out, resolved_data = out.resolve(), data.resolve()
    inside = [resolved_data / name for name in levels.NAMES]
    if resolved_out == resolved_data or any(f == resolved_out or f in resolved_out.parents for f in inside):
        raise UsageError(f"{out}: the output folder must not be the input folder {data} or one of its levels")


def optimize_masks(
    config: OptimizeMasksConfig,
    model: ProbabilityModel | None = None,
    on_image: Callable[[], None] | None = None,
) -> OptimizeMasksResult:
    """Masks and masked images for every image of `config.data`, written under `config.out`.

    `model` is any object with `.probabilities(image)` (and optionally `.probabilities_batch`);
    None loads `corrode.segment.Segmenter` from `config.seg`, unless `config.masks` gives existing
    masks. A bad image is recorded in `failed` and the rest are processed; inputs are never
    modified; every file is written atomically. `on_image` is called once per input, done or failed.
    """
    from corrode.config import save_config
    from corrode.datasets import check_same_size
    from corrode.images import BLACK, read_image, read_mask
    from corrode.leveldata import resolve_level_data

    data, out = Path(config.data), Path(config.out)
    if not data.is_dir():
        raise UsageError(f"{data}: no such folder")
    # The one rule for level data (corrode.leveldata): DATA or DATA/levels/, and --masks checked there.
    # Without --masks the segmenter makes the masks, whatever masks folder DATA may have.
    found = resolve_level_data(data, config.masks)
    _check_out(data, out)
    data = found.root
    _check_out(data, out)
    items = find_inputs(data)
    if model is None and config.masks is None:
        from corrode.segment import Segmenter

        model = Segmenter.load(config.seg, config.device, batch_size=config.batch_size)

    inputs = {resolve_safely(item.path) for item in items}
    claimed: dict[Path, Path] = {}
    result = OptimizeMasksResult(out)

    def fail(error: CorrodeError) -> None:
        result.failed.append(str(error))
        if on_image is not None:
            on_image()

    for start in range(0, len(items), config.batch_size):
        batch: list[tuple[Item, np.ndarray, np.ndarray | None]] = []
        for item in items[start : start + config.batch_size]:
            try:
                masked_path, mask_path = output_paths(item, out)
                if resolve_safely(masked_path) in inputs or resolve_safely(mask_path) in inputs:
                    raise FileError(item.path, f"its output {masked_path} would overwrite an input")
                if masked_path in claimed:
                    raise FileError(
                        item.path, f"same stem as {claimed[masked_path].name}: outputs would collide"
                    )
                claimed[masked_path] = item.path
                image = read_image(item.path, background=BLACK)
                mask = None
                if found.masks_root is not None and config.masks is not None:
                    mask_file = find_mask(item, found.masks_root)
                    mask = read_mask(mask_file)
                    check_same_size(image, mask, item.path, mask_file)
                batch.append((item, image, mask))
            except CorrodeError as exc:
                fail(exc)
        if not batch:
            continue
        probabilities: list[np.ndarray | None] = [None] * len(batch)
        if config.masks is None:
            assert model is not None
            try:
                probabilities = list(_probabilities(model, [image for _, image, _ in batch]))
            except CorrodeError:
                # One image spoilt the batch: run them one by one so only that one fails.
                probabilities = []
                for item, image, _ in batch:
                    try:
                        probabilities.append(_probabilities(model, [image])[0])
                    except CorrodeError as exc:
                        probabilities.append(None)
                        fail(FileError(item.path, str(exc)))
                batch = [entry for entry, p in zip(batch, probabilities, strict=True) if p is not None]
                probabilities = [p for p in probabilities if p is not None]
        for (item, image, mask), probability in zip(batch, probabilities, strict=True):
            try:
                final, row = _mask_item(item, image, probability, mask, config)
                _write(item, out, image, final)
                result.rows.append(row)
                if on_image is not None:
                    on_image()
            except MaskError as exc:
                fail(FileError(item.path, str(exc)))
            except CorrodeError as exc:
                fail(exc)
    _write_csv(result)
    save_config(config, out / "config.json")
    return result


def _write_csv(result: OptimizeMasksResult) -> None:
    from corrode.images import atomic_write_text

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(result.rows)
    atomic_write_text(result.csv_path, buffer.getvalue())

"""Which cars evaluate reads: the clean cars to translate, the real cars of each level, their masks,
the synth manifest's true coverage bands, and full-size photos for the composite check. Level data and
masks are found by `corrode.leveldata` (one rule for every command)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from corrode import levels
from corrode.errors import FileError, UsageError
from corrode.evaluate.config import EvaluateConfig

if TYPE_CHECKING:
    import torch


@dataclass
class CarSet:
    """Masked cars at one size: `images` (N, S, S, 3) uint8, `masks` (N, S, S) bool, their files."""

    images: np.ndarray
    masks: np.ndarray
    paths: list[Path]
    # One "path: reason" line per file that could not be read (each also logged once).
    failed: list[str] = field(default_factory=list)

    def tensor(self) -> torch.Tensor:
        import torch

        return torch.from_numpy(self.images).permute(0, 3, 1, 2).float().div(255.0)

    def __len__(self) -> int:
        return len(self.paths)


def spread(items: Sequence[Any], count: int) -> list[Any]:
    """`count` items evenly spaced over `items` (all of them when there are fewer)."""
    if len(items) <= count:
        return list(items)
    picks = np.linspace(0, len(items) - 1, count).round().astype(int)
    return [items[i] for i in picks]


def read_cars(
    paths: Sequence[Path],
    size: int,
    masks_root: Path | None,
    log: Callable[[str], None],
    mask_for: Callable[[Path], Path | None] | None = None,
) -> CarSet:
    """Read and mask `paths` at `size`; unreadable ones are logged and left out.

    Masks come from `mask_for(path)` when given (None: the image is already masked), else from
    `masks_root/<level>/<stem>.*`.
    """
    from corrode.leveldata import load_masked

    images, masks, kept, failed = [], [], [], []
    for path in paths:
        try:
            if mask_for is not None:
                image, mask = load_masked(path, size, None, mask_for(path))
            else:
                image, mask = load_masked(path, size, masks_root)
        except FileError as exc:
            log(f"skipped {exc}")
            failed.append(str(exc))
            continue
        images.append(image)
        masks.append(mask)
        kept.append(path)
    if not kept:
        empty = CarSet(np.zeros((0, size, size, 3), np.uint8), np.zeros((0, size, size), bool), [])
        empty.failed = failed
        return empty
    return CarSet(np.stack(images), np.stack(masks), kept, failed)


@dataclass
class DataPlan:
    root: Path
    masks_root: Path | None
    sources: list[Path]
    sources_folder: Path
    held_out: bool
    real: dict[str, list[Path]]
    manifest: list[dict[str, str]] | None

    def source_mask(self, path: Path) -> Path | None:
        """A clean car's mask, by `corrode.leveldata.source_mask`'s rule."""
        from corrode.leveldata import source_mask

        return source_mask(path, self.sources_folder, self.masks_root)


def plan_data(cfg: EvaluateConfig) -> DataPlan:
    """Which clean cars to translate and which real cars stand for each level."""
    from corrode.datasets import DatasetError, find_levels
    from corrode.images import list_images
    from corrode.leveldata import resolve_level_data

    if cfg.data is None:
        raise UsageError(
            "no --data folder given (level folders none/ mild/ moderate/ severe/, or a synth folder)"
        )
    found = resolve_level_data(Path(cfg.data), cfg.masks)
    root, masks_root = found.root, found.masks_root
    found = find_levels(root, required=())
    manifest = synth_manifest(Path(cfg.data), root)
    real: dict[str, list[Path]] = {name: list(found.get(name, [])) for name in levels.NAMES}
    if manifest is not None:
        # Synth data are filed under their noisy *given* labels; the manifest knows the true level.
        base = _manifest_base(Path(cfg.data), root)
        real = {name: [] for name in levels.NAMES}
        for row in manifest:
            if row.get("set") == "levels" and row.get("true_level") in real:
                path = base / row["file"]
                if path.is_file():
                    real[row["true_level"]].append(path)
    if cfg.sources is not None:
        sources = list_images([cfg.sources])
        folder, held_out = Path(cfg.sources), True
    else:
        sources = list(real[levels.CLEAN.name])
        folder, held_out = root / levels.CLEAN.name, False
    if not sources:
        raise DatasetError(f"{folder}: no clean (none) car images to translate")
    return DataPlan(root, masks_root, spread(sorted(sources), cfg.limit), folder, held_out, real, manifest)


def _manifest_base(data: Path, root: Path) -> Path:
    return data if (data / "manifest.csv").is_file() else root.parent


def synth_manifest(data: Path, root: Path) -> list[dict[str, str]] | None:
    from corrode.manifest import MANIFEST, read_manifest

    for folder in (data, root.parent):
        path = folder / MANIFEST
        if path.is_file():
            try:
                rows = read_manifest(path)
            except (OSError, UnicodeDecodeError, ValueError):
                return None
            if rows and {"file", "true_level", "rust_fraction"} <= set(rows[0]):
                return rows
    return None


def coverage_bands(manifest: list[dict[str, str]]) -> dict[str, tuple[float, float, float]]:
    """(lowest, highest, mean) true rust fraction per true level, from a synth manifest."""
    values: dict[str, list[float]] = {}
    for row in manifest:
        try:
            values.setdefault(row["true_level"], []).append(float(row["rust_fraction"]))
        except (KeyError, ValueError):
            continue
    return {name: (min(v), max(v), float(np.mean(v))) for name, v in values.items() if v}


@dataclass
class RenderCars:
    images: list[np.ndarray]
    masks: list[np.ndarray]


def render_inputs(
    plan: DataPlan, readable: Sequence[Path], count: int, log: Callable[[str], None]
) -> RenderCars | None:
    """Full-size photos (background kept) and their masks, for the composite check, chosen among the
    clean cars already read (`readable`), so that a bad file is named once."""
    from corrode.datasets import check_same_size
    from corrode.images import read_image, read_mask

    images, masks = [], []
    for path in spread(list(readable), count):
        mask_path = plan.source_mask(path)
        if mask_path is None:
            continue
        try:
            image, mask = read_image(path), read_mask(mask_path)
            check_same_size(image, mask, path, mask_path)
        except FileError as exc:
            log(f"skipped {exc}")
            continue
        if mask.any():
            images.append(image)
            masks.append(mask)
    return RenderCars(images, masks) if images else None

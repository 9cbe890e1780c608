"""Level data sets: where a level-folder data set and its masks are, and reading its masked images.

One rule for every command that reads a level data set (`train-gan`, `train-classifier`, `evaluate`,
`optimize-masks`):

- the root is DATA, or `DATA/levels/` when DATA has no level folders but that folder does (a
  `corrode synth` output);
- the masks are `--masks` when given (it must be a folder), else `ROOT/masks/`, else `ROOT_masks/`
  beside the root (`corrode synth` writes `levels_masks/`, `optimize-masks` writes `OUT/masks/`),
  else none: the images are then taken as already masked, the car being their non-black pixels.

A folder of clean cars given apart from the data set (`evaluate --sources SOURCES`) has its masks in
`SOURCES_masks/` beside it, else in the data set's `<masks root>/none/` (`source_mask`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from corrode import levels
from corrode.errors import FileError, UsageError

MASKS_FOLDER = "masks"


@dataclass(frozen=True)
class LevelData:
    """A level data set on disk: the folder holding `none/ mild/ moderate/ severe/`, and its masks root."""

    root: Path
    masks_root: Path | None


def resolve_level_data(data: Path, masks: Path | None = None) -> LevelData:
    """Where DATA's level folders and masks are (the rule in this module's docstring)."""
    root = Path(data)
    if not any((root / name).is_dir() for name in levels.NAMES) and (root / "levels").is_dir():
        root = root / "levels"
    if masks is not None:
        if not Path(masks).is_dir():
            raise UsageError(f"--masks {masks}: no such folder")
        return LevelData(root, Path(masks))
    for candidate in (root / MASKS_FOLDER, root.with_name(root.name + "_masks")):
        if candidate.is_dir():
            return LevelData(root, candidate)
    return LevelData(root, None)


def source_mask(path: Path, sources: Path, masks_root: Path | None) -> Path | None:
    """A clean car's mask: `<sources>_masks/<stem>.*`, else `<masks root>/none/<stem>.*`, else None."""
    from corrode.datasets import level_mask_path

    folders = [Path(sources).with_name(Path(sources).name + "_masks")]
    if masks_root is not None:
        folders.append(Path(masks_root) / levels.CLEAN.name)
    for folder in folders:
        found = level_mask_path(Path(folder.name) / path.name, folder.parent) if folder.is_dir() else None
        if found is not None:
            return found
    return None


def load_masked(
    path: Path, size: int, masks_root: Path | None, mask_path: Path | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """One image resized to `size` with its background black: `(S, S, 3)` uint8 and `(S, S)` bool car mask.

    The mask is `mask_path`, else `masks_root/<level>/<stem>.*`; with neither, the image is taken as
    already masked and the car is its non-black pixels. Raises FileError (ImageError) for an
    unreadable image or a missing or mismatched mask.
    """
    from corrode.datasets import check_same_size, level_mask_path, resize_pair
    from corrode.images import ImageError, read_image, read_mask

    image = read_image(path, background=(0, 0, 0))
    if masks_root is None and mask_path is None:
        image, _ = resize_pair(image, None, size)
        return image, image.max(axis=2) > 0
    if mask_path is None:
        assert masks_root is not None
        mask_path = level_mask_path(path, masks_root)
    if mask_path is None:
        raise ImageError(path, f"no mask for this image under {masks_root / path.parent.name}")
    mask = read_mask(mask_path)
    check_same_size(image, mask, path, mask_path)
    image, mask = resize_pair(image, mask, size)
    assert mask is not None
    return image * mask[:, :, None].astype(np.uint8), mask


@dataclass
class LevelImages:
    """Images of all levels in memory: `(N, 3, S, S)` uint8, level indices, their files, and what failed."""

    images: np.ndarray
    labels: np.ndarray
    paths: list[Path]
    failed: list[FileError]


def read_level_images(root: Path, masks_root: Path | None, size: int) -> LevelImages:
    """Every image of every level folder, masked and resized; unreadable ones listed in `failed`.

    Images are held as uint8 (a 5,000-image set at 128 px is 250 MB), so epochs never decode files.
    """
    from corrode.datasets import DatasetError, find_levels

    found = find_levels(root, required=())
    if not any(found.values()):
        raise DatasetError(f"{root}: no level folders ({', '.join(levels.NAMES)}) with images")
    arrays: list[np.ndarray] = []
    labels: list[int] = []
    paths: list[Path] = []
    failed: list[FileError] = []
    for name, files in found.items():
        for path in files:
            try:
                image, _ = load_masked(path, size, masks_root)
            except FileError as exc:
                failed.append(exc)
                continue
            arrays.append(np.ascontiguousarray(image.transpose(2, 0, 1)))
            labels.append(levels.get(name).index)
            paths.append(path)
    if not arrays:
        raise DatasetError(f"{root}: none of the images could be read")
    return LevelImages(np.stack(arrays), np.asarray(labels, dtype=np.int64), paths, failed)

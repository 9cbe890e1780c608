"""Folder layouts on disk -> lists of files -> torch Datasets.

Layouts:
- image + mask pairs, Carvana: `ROOT/train/<id>.jpg` + `ROOT/train_masks/<id>_mask.gif`;
- image + mask pairs, the project's own: `ROOT/images/<stem>.*` + `ROOT/masks/<stem>.png`;
- level folders: `ROOT/none/ mild/ moderate/ severe/`, optionally with masks in a parallel tree
  (`ROOT_masks/<level>/<stem>.png`, or any folder given as `masks_root`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from corrode import levels
from corrode.errors import FileError, UsageError
from corrode.images import ImageError, images_in, is_image_file, read_image, read_mask, to_tensor


class DatasetError(UsageError):
    """A data folder that does not have the layout a command needs."""


@dataclass(frozen=True)
class Pair:
    image: Path
    mask: Path

    @property
    def stem(self) -> str:
        return self.image.stem


def _images_in(folder: Path) -> list[Path]:
    # Entries that only look like images (a folder named x.jpg, a looping link, an SVG) are kept so
    # that reading them names the problem; a mask folder is indexed by its real files only.
    return images_in(folder)


def _index_by_stem(folder: Path, suffix_to_strip: str = "") -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted(p for p in folder.iterdir() if p.is_file() and is_image_file(p)):
        stem = path.stem
        if suffix_to_strip and stem.endswith(suffix_to_strip):
            stem = stem[: -len(suffix_to_strip)]
        found[stem] = path
    return found


def find_pairs(root: str | Path) -> list[Pair]:
    """Image/mask pairs from a Carvana-layout or images/+masks/ folder, sorted by stem.

    Every image needs its mask: a missing one raises DatasetError naming the image.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: no such folder")
    layouts = (("train", "train_masks", "_mask"), ("images", "masks", ""))
    for image_dir, mask_dir, mask_suffix in layouts:
        if (root / image_dir).is_dir():
            if not (root / mask_dir).is_dir():
                raise DatasetError(f"{root}: has {image_dir}/ but no {mask_dir}/ folder of masks")
            images = _images_in(root / image_dir)
            masks = _index_by_stem(root / mask_dir, mask_suffix)
            if not images:
                raise DatasetError(f"{root / image_dir}: no image files")
            missing = [p for p in images if p.stem not in masks]
            if missing:
                more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
                raise DatasetError(f"{missing[0]}: no mask in {root / mask_dir}{more}")
            return [Pair(p, masks[p.stem]) for p in images]
    raise DatasetError(f"{root}: expected train/ + train_masks/ (Carvana layout) or images/ + masks/ folders")


def find_levels(root: str | Path, *, required: Sequence[str] = levels.NAMES) -> dict[str, list[Path]]:
    """Image files per level from `ROOT/<level>/`; every `required` level must exist and be non-empty."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: no such folder")
    found: dict[str, list[Path]] = {}
    for name in levels.NAMES:
        folder = root / name
        if folder.is_dir():
            found[name] = _images_in(folder)
    for name in required:
        if name not in found:
            raise DatasetError(f"{root}: missing level folder {name}/")
        if not found[name]:
            raise DatasetError(f"{root / name}: level folder holds no images")
    return found


def level_mask_path(image: Path, masks_root: Path) -> Path | None:
    """The mask of a level image: `masks_root/<level>/<stem>.<any image suffix>`."""
    folder = masks_root / image.parent.name
    for suffix in (".png", ".gif", ".jpg", ".bmp", ".webp"):
        candidate = folder / f"{image.stem}{suffix}"
        if candidate.exists():
            return candidate
    return None


def resize_pair(
    image: np.ndarray, mask: np.ndarray | None, size: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """Resize to `size` x `size`: area filter for the image, nearest for the mask (stays binary)."""
    if image.shape[:2] != (size, size):
        shrinking = image.shape[0] >= size and image.shape[1] >= size
        filter_ = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
        image = cv2.resize(image, (size, size), interpolation=filter_)
    if mask is not None and mask.shape != (size, size):
        mask = cv2.resize(mask.astype(np.uint8), (size, size), interpolation=cv2.INTER_NEAREST) > 0
    return image, mask


def check_same_size(image: np.ndarray, mask: np.ndarray, image_path: Path, mask_path: Path) -> None:
    if image.shape[:2] != mask.shape:
        raise FileError(
            mask_path,
            f"mask is {mask.shape[1]}x{mask.shape[0]} but its image {image_path.name} "
            f"is {image.shape[1]}x{image.shape[0]}",
        )


class PairDataset(Dataset):
    """Image + mask pairs resized to `size`.

    Items are `(3, S, S)` float in [0, 1] and `(1, S, S)` float in {0, 1}.
    """

    def __init__(self, pairs: Sequence[Pair], size: int) -> None:
        self.pairs = list(pairs)
        self.size = size

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        pair = self.pairs[index]
        image = read_image(pair.image)
        mask = read_mask(pair.mask)
        check_same_size(image, mask, pair.image, pair.mask)
        image, mask = resize_pair(image, mask, self.size)
        assert mask is not None
        return to_tensor(image), to_tensor(mask)


class ImageListDataset(Dataset):
    """Images (optionally with masks applied, background black) resized to `size`: `(3, S, S)` float."""

    def __init__(self, paths: Sequence[Path], size: int, *, masks_root: Path | None = None) -> None:
        self.paths = list(paths)
        self.size = size
        self.masks_root = masks_root

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor:
        path = self.paths[index]
        image = read_image(path, background=(0, 0, 0))
        mask = None
        if self.masks_root is not None:
            mask_path = level_mask_path(path, self.masks_root)
            if mask_path is None:
                raise ImageError(path, f"no mask for this image under {self.masks_root}")
            mask = read_mask(mask_path)
            check_same_size(image, mask, path, mask_path)
        image, mask = resize_pair(image, mask, self.size)
        tensor = to_tensor(image)
        if mask is not None:
            tensor = tensor * to_tensor(mask)
        return tensor

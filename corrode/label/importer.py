"""Existing level folders (`ROOT/none/ mild/ moderate/ severe/`) -> the database, as one annotator."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from corrode import levels
from corrode.errors import UsageError
from corrode.images import ImageError, checked_size, images_in
from corrode.label.db import LabelDB, check_annotator


@dataclass(frozen=True)
class ImportResult:
    imported: dict[str, int]
    failed: list[str]  # "path: reason" for each file that is not a usable image


def import_levels(db_path: str | Path, root: str | Path, annotator: str) -> ImportResult:
    """Register every image under ROOT/<level>/ and label it with its folder's level.

    Each image is decoded whole: labels imported here become training data, so a file cut short
    is named now rather than by a trainer later."""
    root = Path(root)
    annotator = check_annotator(annotator)
    if not root.is_dir():
        raise UsageError(f"{root}: no such folder")
    found = {name: images_in(root / name, recursive=True) for name in levels.NAMES if (root / name).is_dir()}
    if not found:
        raise UsageError(f"{root}: no level folders ({', '.join(n + '/' for n in levels.NAMES)})")
    imported = dict.fromkeys(levels.NAMES, 0)
    failed: list[str] = []
    with LabelDB(db_path) as db:
        for name, paths in found.items():
            entries = []
            for path in paths:
                try:
                    entries.append((path, checked_size(path), None))
                except ImageError as exc:
                    failed.append(str(exc))
            ids = db.add_images(entries)
            db.set_labels([(image_id, name) for image_id in ids], annotator)
            imported[name] += len(ids)
    return ImportResult(imported, failed)

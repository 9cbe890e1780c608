"""Existing level folders (`ROOT/none/ mild/ moderate/ severe/`) -> the database, as one annotator."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from corrode import levels
from corrode.errors import UsageError
from corrode.images import ImageError, image_size, is_image_file
from corrode.label.db import LabelDB, check_annotator


@dataclass(frozen=True)
class ImportResult:
    imported: dict[str, int]
    failed: list[str]  # "path: reason" for each file that is not a usable image


def import_levels(db_path: str | Path, root: str | Path, annotator: str) -> ImportResult:
    """Register every image under ROOT/<level>/ and label it with its folder's level."""
    root = Path(root)
    annotator = check_annotator(annotator)
    if not root.is_dir():
        raise UsageError(f"{root}: no such folder")
    found = {
        name: sorted(p for p in (root / name).rglob("*") if p.is_file() and is_image_file(p))
        for name in levels.NAMES
        if (root / name).is_dir()
    }
    if not found:
        raise UsageError(f"{root}: no level folders ({', '.join(n + '/' for n in levels.NAMES)})")
    imported = dict.fromkeys(levels.NAMES, 0)
    failed: list[str] = []
    with LabelDB(db_path) as db:
        for name, paths in found.items():
            entries = []
            for path in paths:
                try:
                    entries.append((path, image_size(path), None))
                except ImageError as exc:
                    failed.append(str(exc))
            ids = db.add_images(entries)
            db.set_labels([(image_id, name) for image_id in ids], annotator)
            imported[name] += len(ids)
    return ImportResult(imported, failed)

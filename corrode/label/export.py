"""Votes -> level folders (`OUT/<level>/<file>`) plus `OUT/labels.csv`.

Several votes on one image are resolved by their median level (for an even number of votes
the lower of the two middle levels, so a tie never invents a worse level). An image is left
out when it has fewer than `min_votes` level votes, when its votes spread over more than
`max_spread` levels (if given), or when at least half of its votes reject it.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from corrode import levels
from corrode.config import require
from corrode.errors import FileError
from corrode.images import atomic_path, atomic_write_text
from corrode.label.db import REJECT, LabelDB

CSV_NAME = "labels.csv"
CSV_COLUMNS = ("file", "level", "votes", "spread", "source")


@dataclass(frozen=True)
class ExportConfig:
    db: Path
    out: Path
    min_votes: int = 1
    max_spread: int | None = None
    link: bool = False  # hard links instead of copies (same file system only)

    def __post_init__(self) -> None:
        require(self.min_votes >= 1, f"min_votes must be at least 1, got {self.min_votes}")
        require(
            self.max_spread is None or 0 <= self.max_spread < len(levels.LEVELS),
            f"max_spread must be between 0 and {len(levels.LEVELS) - 1}, got {self.max_spread}",
        )


@dataclass(frozen=True)
class Resolution:
    level: str | None  # None: left out
    reason: str  # why it was left out, or "" when exported
    votes: tuple[str, ...]
    spread: int


def resolve(votes: list[str], *, min_votes: int = 1, max_spread: int | None = None) -> Resolution:
    """One image's votes (level names and rejects) -> its level, or why it has none."""
    rejects = sum(1 for v in votes if v == REJECT)
    indices = sorted(levels.get(v).index for v in votes if v != REJECT)
    spread = indices[-1] - indices[0] if indices else 0
    ordered = tuple(sorted(votes))
    if votes and rejects * 2 >= len(votes):
        return Resolution(None, "rejected", ordered, spread)
    if len(indices) < min_votes:
        return Resolution(None, "too few votes", ordered, spread)
    if max_spread is not None and spread > max_spread:
        return Resolution(None, "votes spread too far", ordered, spread)
    median = indices[(len(indices) - 1) // 2]
    return Resolution(levels.LEVELS[median].name, "", ordered, spread)


@dataclass(frozen=True)
class ExportResult:
    exported: dict[str, int]
    left_out: dict[str, int]
    failed: list[str]
    csv_path: Path


def _place(source: Path, target: Path, link: bool) -> None:
    with atomic_path(target) as temp:
        if link:
            temp.unlink()
            os.link(source, temp)
        else:
            shutil.copyfile(source, temp)


def _previous_files(out: Path) -> list[Path]:
    """Files a previous export listed in its CSV, so a re-export never leaves stale copies."""
    listed = out / CSV_NAME
    if not listed.is_file():
        return []
    with listed.open(newline="", encoding="utf-8") as handle:
        return [out / row["file"] for row in csv.DictReader(handle) if row.get("file")]


def export(config: ExportConfig) -> ExportResult:
    out = config.out
    with LabelDB(config.db, create=False) as db:
        images = {image.id: image for image in db.images()}
        votes = db.votes()
    exported = dict.fromkeys(levels.NAMES, 0)
    left_out: dict[str, int] = {}
    failed: list[str] = []
    planned: list[tuple[Path, str, Resolution, str]] = []
    used: set[str] = set()
    for image_id in sorted(votes):
        image = images[image_id]
        resolution = resolve(
            list(votes[image_id].values()), min_votes=config.min_votes, max_spread=config.max_spread
        )
        if resolution.level is None:
            left_out[resolution.reason] = left_out.get(resolution.reason, 0) + 1
            continue
        if image.bad:
            failed.append(f"{image.path}: {image.bad}")
            continue
        name = image.path.name
        relative = f"{resolution.level}/{name}"
        if relative in used:  # same file name from two folders
            relative = f"{resolution.level}/{image.path.stem}-{image.id}{image.path.suffix}"
        used.add(relative)
        planned.append((image.path, relative, resolution, resolution.level))

    previous = _previous_files(out)
    written: set[str] = set()
    rows = io.StringIO()
    writer = csv.writer(rows)
    writer.writerow(CSV_COLUMNS)
    for source, relative, resolution, level in planned:
        try:
            if not source.is_file():
                raise FileError(source, "no such file")
            _place(source, out / relative, config.link)
        except OSError as exc:
            failed.append(f"{source}: cannot {'link' if config.link else 'copy'} ({exc.strerror or exc})")
            continue
        except FileError as exc:
            failed.append(str(exc))
            continue
        exported[level] += 1
        written.add(relative)
        writer.writerow((relative, level, " ".join(resolution.votes), resolution.spread, str(source)))
    root = out.resolve()
    for stale in previous:
        # Only files an export writes: directly inside a level folder of OUT, whatever the old CSV says.
        try:
            relative = stale.resolve().relative_to(root).as_posix()
        except ValueError:
            continue
        folder, _, name = relative.partition("/")
        if (
            folder in levels.NAMES
            and name
            and "/" not in name
            and relative not in written
            and stale.is_file()
        ):
            stale.unlink()

    csv_path = out / CSV_NAME
    atomic_write_text(csv_path, rows.getvalue())
    return ExportResult(exported, left_out, failed, csv_path)

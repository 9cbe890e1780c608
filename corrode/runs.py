"""Run folders: `runs/<name>/` with config.json, weights, state for resume, metrics.csv, figures."""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

CONFIG = "config.json"
WEIGHTS = "model.safetensors"
BEST_WEIGHTS = "best.safetensors"
STATE = "state.pt"
METRICS = "metrics.csv"
# What corrode.images.atomic_path names its temporary file (mkstemp: 8 random characters).
TEMPORARY = re.compile(r"^\..+\.[a-z0-9_]{8}\.part(\.[^.]+)?$")


def stray_temporaries(directory: str | Path) -> list[Path]:
    """Temporary files that a write killed half-way (kill -9, power loss) left in a run folder."""
    directory = Path(directory)
    found = [p for p in directory.rglob(".*") if p.is_file() and TEMPORARY.match(p.name)]
    return sorted(found)


class MetricsLog:
    """Append-only CSV of metric rows; each row is flushed and fsynced, so a kill loses no row.

    Columns are fixed by the first row (or an existing file's header); later rows may omit some.
    On resume, `truncate_after(step)` drops rows logged after the checkpoint being resumed.
    """

    def __init__(self, path: str | Path, columns: Iterable[str] | None = None) -> None:
        self.path = Path(path)
        self.columns: list[str] | None = list(columns) if columns is not None else None
        if self.path.exists() and self.path.stat().st_size > 0:
            with self.path.open(newline="", encoding="utf-8") as handle:
                header = next(csv.reader(handle), None)
            if header:
                self.columns = header

    def append(self, row: Mapping[str, object]) -> None:
        new_file = not self.path.exists() or self.path.stat().st_size == 0
        if self.columns is None:
            self.columns = list(row)
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self.columns, extrasaction="ignore")
        if new_file:
            writer.writeheader()
        writer.writerow({k: _format(v) for k, v in row.items()})
        data = buffer.getvalue().encode("utf-8")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            size = os.fstat(descriptor).st_size
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(descriptor, view) :]
                os.fsync(descriptor)
            except OSError:
                # A full disk may have taken part of the row: cut the file back to its last whole row.
                os.ftruncate(descriptor, size)
                raise
        finally:
            os.close(descriptor)

    def rows(self) -> list[dict[str, str]]:
        if not self.path.exists():
            return []
        with self.path.open(newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))

    def truncate_after(self, key: str, last: float) -> None:
        """Keep only rows whose `key` column is <= `last` (rows a resumed run will log again)."""
        rows = [r for r in self.rows() if r.get(key) not in (None, "") and float(r[key]) <= last]
        from corrode.images import atomic_write_text

        if self.columns is None:
            return
        lines = [",".join(self.columns)]
        for row in rows:
            lines.append(",".join(_csv_cell(row.get(c, "")) for c in self.columns))
        atomic_write_text(self.path, "\n".join(lines) + "\n")


def _format(value: object) -> object:
    if isinstance(value, float):
        return f"{value:.6g}"
    if hasattr(value, "item"):
        return f"{value.item():.6g}"  # type: ignore[union-attr]
    return value


def _csv_cell(value: str) -> str:
    return f'"{value}"' if ("," in value or '"' in value) else value

"""manifest.csv (one row per kept image) and rejected.csv (one row per URL turned away).

Both are append-only CSV files. Each row is written with one `write` on an O_APPEND descriptor
and fsynced before the image it describes is counted, so a killed run loses at most the row
being written; a torn last line (power cut mid-write) is cut off the next time the file is
opened, so the file always parses. Rows are only ever removed by rewriting the whole file
atomically (temp file + rename), when a larger near-duplicate replaces a kept image.
"""

from __future__ import annotations

import csv
import errno
import io
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path

from corrode.errors import WriteError, write_reason
from corrode.images import atomic_write_text

MANIFEST = "manifest.csv"
REJECTED = "rejected.csv"
MANIFEST_COLUMNS = (
    "file",
    "sha256",
    "phash",
    "url",
    "page_url",
    "query",
    "engine",
    "width",
    "height",
    "bytes",
    "time",
)
REJECTED_COLUMNS = ("url", "page_url", "query", "engine", "kind", "reason", "time")


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _line(values: Iterable[object]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(["" if v is None else v for v in values])
    return buffer.getvalue()


class CsvLog:
    """A crash-safe, thread-safe append-only CSV file with a fixed header."""

    def __init__(self, path: Path, columns: tuple[str, ...]) -> None:
        self.path = Path(path)
        self.columns = columns
        self.lock = threading.Lock()
        self._repair()

    def _repair(self) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            # A torn last row from an interrupted write: drop it, keep every complete row.
            with self.path.open("r+b") as handle:
                handle.truncate(data.rfind(b"\n") + 1)
                handle.flush()
                os.fsync(handle.fileno())
        header = next(csv.reader(io.StringIO(self.path.read_text(encoding="utf-8"))), None)
        if header and tuple(header) != self.columns:
            from corrode.errors import FileError

            raise FileError(
                self.path, f"unexpected columns {','.join(header)}; expected {','.join(self.columns)}"
            )

    def rows(self) -> list[dict[str, str]]:
        if not self.path.exists():
            return []
        with self.path.open(newline="", encoding="utf-8") as handle:
            return [row for row in csv.DictReader(handle) if None not in row.values()]

    def append(self, row: Mapping[str, object]) -> None:
        text = _line(row.get(column, "") for column in self.columns)
        with self.lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            except OSError as exc:
                raise WriteError(self.path, write_reason(exc)) from exc
            try:
                size = os.fstat(descriptor).st_size
                if size == 0:
                    text = _line(self.columns) + text
                data = text.encode("utf-8")
                try:
                    if os.write(descriptor, data) != len(data):
                        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                    os.fsync(descriptor)
                except OSError as exc:
                    # A torn row would spoil every row appended after it: cut back to the last whole one.
                    os.ftruncate(descriptor, size)
                    raise WriteError(self.path, write_reason(exc)) from exc
            finally:
                os.close(descriptor)

    def remove(self, drop: Callable[[dict[str, str]], bool]) -> int:
        """Rewrite the file atomically without the rows for which `drop(row)` is true."""
        with self.lock:
            rows = self.rows()
            keep = [row for row in rows if not drop(row)]
            if len(keep) != len(rows):
                text = _line(self.columns) + "".join(_line(r.get(c, "") for c in self.columns) for r in keep)
                atomic_write_text(self.path, text)
            return len(rows) - len(keep)


class Manifest:
    """The two logs of one output folder."""

    def __init__(self, folder: Path) -> None:
        self.kept = CsvLog(Path(folder) / MANIFEST, MANIFEST_COLUMNS)
        self.rejected = CsvLog(Path(folder) / REJECTED, REJECTED_COLUMNS)

"""The label database: SQLite in WAL mode, one row per image per annotator.

Every call that changes labels is its own transaction, committed before it returns, so a
server killed at any moment keeps every keypress it answered. Several processes (two
servers, two tabs) may write at once: writers take the lock up front (BEGIN IMMEDIATE)
and wait for each other through SQLite's busy timeout instead of failing.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from corrode import levels
from corrode.errors import CorrodeError, UsageError, WriteError
from corrode.images import resolve_safely

REJECT = "reject"  # not a usable car photo
SKIP = "skip"  # seen, left for later; not a vote
VOTES: tuple[str, ...] = (*levels.NAMES, REJECT)
CHOICES: tuple[str, ...] = (*VOTES, SKIP)
BUSY_TIMEOUT_MS = 30_000

SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    width INTEGER,
    height INTEGER,
    bad TEXT,
    added REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS labels (
    image_id INTEGER NOT NULL REFERENCES images(id),
    annotator TEXT NOT NULL,
    label TEXT NOT NULL,
    time REAL NOT NULL,
    PRIMARY KEY (image_id, annotator)
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    image_id INTEGER NOT NULL REFERENCES images(id),
    annotator TEXT NOT NULL,
    label TEXT,
    previous TEXT,
    time REAL NOT NULL,
    undone INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS events_by_annotator ON events (annotator, undone, id);
CREATE INDEX IF NOT EXISTS labels_by_annotator ON labels (annotator);
"""


class LabelDatabaseError(CorrodeError):
    """The database file cannot be opened or is not a label database."""


@dataclass(frozen=True)
class Image:
    id: int
    path: Path
    name: str
    width: int | None
    height: int | None
    bad: str | None


@dataclass(frozen=True)
class Change:
    """What a label or undo did: the image and the label it now has (None: no label)."""

    image_id: int
    label: str | None
    previous: str | None


def check_annotator(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 64 or any(ord(c) < 32 for c in name):
        raise UsageError(f"annotator name {name!r}: expected 1-64 printable characters")
    return name


def check_choice(label: str) -> str:
    if label not in CHOICES:
        raise UsageError(f"unknown label {label!r}: expected one of {', '.join(CHOICES)}")
    return label


class LabelDB:
    """A label database file. Safe to share between threads (one connection per thread)."""

    def __init__(self, path: str | Path, *, create: bool = True) -> None:
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise UsageError(f"{self.path}: no such label database")
        if self.path.is_dir():
            raise LabelDatabaseError(f"{self.path}: is a folder, expected a database file")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        try:
            with self.write() as connection:
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        connection.execute(statement)
        except sqlite3.DatabaseError as exc:
            self.close()
            raise LabelDatabaseError(f"{self.path}: not a label database ({exc})") from exc

    def _connect(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            try:
                connection = sqlite3.connect(
                    self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
                )
                connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if mode.lower() != "wal":
                    raise LabelDatabaseError(f"{self.path}: cannot switch to WAL mode (got {mode})")
                # FULL: a commit is on disk (WAL fsynced) before the keypress is answered.
                connection.execute("PRAGMA synchronous = FULL")
                connection.execute("PRAGMA foreign_keys = ON")
            except sqlite3.DatabaseError as exc:
                raise LabelDatabaseError(f"{self.path}: cannot open ({exc})") from exc
            self._local.connection = connection
            with self._lock:
                self._connections.append(connection)
        return connection

    def close(self) -> None:
        with self._lock:
            for connection in self._connections:
                connection.close()
            self._connections.clear()
        self._local = threading.local()

    def __enter__(self) -> LabelDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken with the write lock up front and committed on exit."""
        connection = self._connect()
        try:
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            # SQLite's transaction is all or nothing: what was committed before stays, this is undone.
            if "full" in str(exc) or "disk I/O" in str(exc):
                raise WriteError(self.path, f"{exc}; this change was not saved") from exc
            raise

    def read(self, sql: str, parameters: Iterable[object] = ()) -> list[tuple]:
        return self._connect().execute(sql, tuple(parameters)).fetchall()

    # Images ------------------------------------------------------------------------------------

    def add_images(self, entries: Iterable[tuple[Path, tuple[int, int] | None, str | None]]) -> list[int]:
        """Register `(path, (width, height) or None, bad reason or None)`; returns ids in order.

        Paths are stored resolved, so one file is one image however it was named.
        Registering again updates size and bad reason, and keeps the id and the labels.
        """
        ids = []
        now = time.time()
        with self.write() as connection:
            for path, size, bad in entries:
                resolved = str(resolve_safely(path))
                width, height = size if size else (None, None)
                connection.execute(
                    "INSERT INTO images (path, name, width, height, bad, added) VALUES (?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT(path) DO UPDATE SET width = excluded.width, height = excluded.height, "
                    "bad = excluded.bad",
                    (resolved, Path(path).name, width, height, bad, now),
                )
                row = connection.execute("SELECT id FROM images WHERE path = ?", (resolved,)).fetchone()
                ids.append(row[0])
        return ids

    def mark_bad(self, image_id: int, reason: str) -> None:
        with self.write() as connection:
            connection.execute("UPDATE images SET bad = ? WHERE id = ?", (reason, image_id))

    def image(self, image_id: int) -> Image | None:
        rows = self.read("SELECT id, path, name, width, height, bad FROM images WHERE id = ?", (image_id,))
        if not rows:
            return None
        row = rows[0]
        return Image(row[0], Path(row[1]), row[2], row[3], row[4], row[5])

    def images(self, ids: Iterable[int] | None = None) -> list[Image]:
        rows = self.read("SELECT id, path, name, width, height, bad FROM images ORDER BY id")
        wanted = None if ids is None else set(ids)
        return [
            Image(r[0], Path(r[1]), r[2], r[3], r[4], r[5]) for r in rows if wanted is None or r[0] in wanted
        ]

    def bad_ids(self) -> set[int]:
        return {row[0] for row in self.read("SELECT id FROM images WHERE bad IS NOT NULL")}

    # Labels ------------------------------------------------------------------------------------

    def set_label(self, image_id: int, annotator: str, label: str) -> Change:
        """Record one keypress: the annotator's label for the image, committed before returning."""
        return self.set_labels([(image_id, label)], annotator)[0]

    def set_labels(self, items: Iterable[tuple[int, str]], annotator: str) -> list[Change]:
        """Several labels by one annotator in one transaction (imports)."""
        changes = []
        now = time.time()
        with self.write() as connection:
            for image_id, label in items:
                check_choice(label)
                if connection.execute("SELECT 1 FROM images WHERE id = ?", (image_id,)).fetchone() is None:
                    raise UsageError(f"no image with id {image_id}")
                row = connection.execute(
                    "SELECT label FROM labels WHERE image_id = ? AND annotator = ?", (image_id, annotator)
                ).fetchone()
                previous = row[0] if row else None
                connection.execute(
                    "INSERT INTO labels (image_id, annotator, label, time) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT(image_id, annotator) DO UPDATE SET label = excluded.label, "
                    "time = excluded.time",
                    (image_id, annotator, label, now),
                )
                connection.execute(
                    "INSERT INTO events (image_id, annotator, label, previous, time) VALUES (?, ?, ?, ?, ?)",
                    (image_id, annotator, label, previous, now),
                )
                changes.append(Change(image_id, label, previous))
        return changes

    def undo(self, annotator: str, image_ids: Iterable[int] | None = None) -> Change | None:
        """Take back the annotator's latest keypress (among `image_ids` if given); None if none is left."""
        wanted = None if image_ids is None else set(image_ids)
        with self.write() as connection:
            rows = connection.execute(
                "SELECT id, image_id, label, previous FROM events WHERE annotator = ? AND undone = 0 "
                "ORDER BY id DESC",
                (annotator,),
            )
            event = next((row for row in rows if wanted is None or row[1] in wanted), None)
            if event is None:
                return None
            event_id, image_id, label, previous = event
            if previous is None:
                connection.execute(
                    "DELETE FROM labels WHERE image_id = ? AND annotator = ?", (image_id, annotator)
                )
            else:
                connection.execute(
                    "UPDATE labels SET label = ?, time = ? WHERE image_id = ? AND annotator = ?",
                    (previous, time.time(), image_id, annotator),
                )
            connection.execute("UPDATE events SET undone = 1 WHERE id = ?", (event_id,))
        return Change(image_id, previous, label)

    def labels_of(self, annotator: str) -> dict[int, str]:
        rows = self.read("SELECT image_id, label FROM labels WHERE annotator = ?", (annotator,))
        return dict(rows)

    def all_labels(self) -> list[tuple[int, str, str, float]]:
        """Every row: (image id, annotator, label, time)."""
        return self.read("SELECT image_id, annotator, label, time FROM labels ORDER BY image_id, annotator")

    def annotators(self) -> list[str]:
        return [row[0] for row in self.read("SELECT DISTINCT annotator FROM labels ORDER BY annotator")]

    def votes(self) -> dict[int, dict[str, str]]:
        """Per image, per annotator: the vote (a level name or reject); skips are not votes."""
        found: dict[int, dict[str, str]] = {}
        for image_id, annotator, label, _ in self.all_labels():
            if label != SKIP:
                found.setdefault(image_id, {})[annotator] = label
        return found

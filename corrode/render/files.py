"""How render writes its outputs, so that no run leaves a broken or stray file behind.

Each output is written to a temporary file beside it (`.<stem>.<random>.part<suffix>`, unique per
writer, so two renders into one folder never share one) and renamed into place when complete. The
writer holds an exclusive `flock` on its temporary file while it writes: the kernel drops the lock
when the process dies, even by `kill -9`, so the next run can tell a dead writer's leftover (lock
free: deleted by `sweep_leftovers`) from another live render's file in progress (locked: kept).
SIGTERM is turned into an exception for the batch (`terminate_as_exception`), so a terminated render
removes its own temporary file on the way out.
"""

from __future__ import annotations

import fcntl
import glob
import io
import os
import signal
import tempfile
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import numpy as np

from corrode.errors import UsageError

TEMP_INFIX = ".part"


class Terminated(BaseException):
    """SIGTERM arrived during a render batch (a BaseException, like KeyboardInterrupt, so that no
    `except Exception` swallows it)."""


def _file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextmanager
def claimed_temp(path: Path) -> Iterator[BinaryIO]:
    """A locked temporary file beside `path`, renamed to `path` when the block completes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        descriptor, name = tempfile.mkstemp(
            prefix=f".{path.stem}.", suffix=f"{TEMP_INFIX}{path.suffix}", dir=path.parent
        )
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        # A sweeping run may have taken the file between its creation and our lock: then start over.
        if os.fstat(descriptor).st_nlink > 0:
            break
        os.close(descriptor)
    temp = Path(name)
    try:
        with os.fdopen(descriptor, "wb", closefd=False) as handle:
            yield handle
        os.chmod(temp, _file_mode())
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
        os.close(descriptor)


def write_output(path: Path, image: np.ndarray, *, quality: int = 95) -> Path:
    """An RGB uint8 array as the image format of `path`'s suffix, through `claimed_temp`."""
    from PIL import Image

    formats = Image.registered_extensions()
    fmt = formats.get(path.suffix.lower())
    if fmt is None:
        raise UsageError(f"{path}: no image format for the suffix {path.suffix!r}")
    picture = Image.fromarray(np.ascontiguousarray(image))
    options: dict[str, object] = {}
    if fmt in ("JPEG", "WEBP"):
        options["quality"] = quality
    buffer = io.BytesIO()
    picture.save(buffer, format=fmt, **options)
    with claimed_temp(path) as handle:
        handle.write(buffer.getbuffer())
    return path


def leftovers(path: Path) -> list[Path]:
    """Temporary files of `path` (ours or another writer's, alive or dead)."""
    pattern = f".{glob.escape(path.stem)}.*{TEMP_INFIX}{glob.escape(path.suffix)}"
    return sorted(path.parent.glob(pattern)) if path.parent.is_dir() else []


def sweep_leftovers(paths: Iterable[Path]) -> list[Path]:
    """Delete the temporary files of `paths` that no live process holds (a killed run's); returns them."""
    removed = []
    for path in paths:
        for candidate in leftovers(path):
            try:
                descriptor = os.open(candidate, os.O_RDONLY)
            except OSError:
                continue
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(descriptor)  # a live writer holds it
                continue
            try:
                candidate.unlink(missing_ok=True)
                removed.append(candidate)
            finally:
                os.close(descriptor)
    return removed


@contextmanager
def terminate_as_exception() -> Iterator[None]:
    """Within the block, SIGTERM raises `Terminated` (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)

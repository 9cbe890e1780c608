"""Typed errors. Library code raises these; only the CLI turns them into a message and an exit code."""

from __future__ import annotations

from pathlib import Path


class CorrodeError(Exception):
    """Base of every error the CLI reports as one line. `exit_code` is what the CLI exits with."""

    exit_code = 1


class UsageError(CorrodeError):
    """The call itself is wrong (bad option value, missing folder, inconsistent config)."""

    exit_code = 2


class ConfigError(UsageError):
    """A configuration dataclass holds a value it cannot work with."""


class FileError(CorrodeError):
    """Something is wrong with one named file. The message is `<path>: <reason>`."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class WriteError(FileError):
    """An output that could not be written (disk full, read-only, no permission). Nothing of it is
    left behind: the message is `<path>: cannot write (<reason>)`."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(path, f"cannot write ({reason})")
        self.cause = reason


def write_reason(exc: BaseException) -> str:
    """A short reason for a failed write: the OS's words for its errno, else the first line."""
    import errno
    import os

    number = getattr(exc, "errno", None)
    if isinstance(number, int) and number in errno.errorcode:
        return os.strerror(number).lower()
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__

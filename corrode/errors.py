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

"""One reporter for every trainer: notes (one line each), progress bars (Rich), and a per-step hook."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

StepHook = Callable[[int, int, dict[str, float]], None]


class Reporter:
    """Where a trainer's notes and progress go. Every part is optional; a bare Reporter is silent.

    `progress` is a started Rich Progress; `note` receives notes and per-epoch lines; `on_step` is
    called as `on_step(step, total, values)` after every optimisation step.
    """

    def __init__(
        self,
        progress: Any | None = None,
        note: Callable[[str], None] | None = None,
        on_step: StepHook | None = None,
    ) -> None:
        self.progress = progress
        self._note = note
        self.on_step = on_step
        self._tasks: dict[str, Any] = {}
        self.skipped: list[str] = []

    def skip(self, error: object) -> None:
        """A bad input left out of training: one line naming it and the reason, and counted."""
        self.skipped.append(str(error))
        self.note(f"skipped {error}")

    def note(self, line: str) -> None:
        if self._note is not None:
            self._note(line)

    def start(self, name: str, total: int | None, description: str | None = None) -> None:
        """Show (or reset) the bar `name` at 0 of `total`."""
        if self.progress is None:
            return
        if name not in self._tasks:
            self._tasks[name] = self.progress.add_task(description or name, total=total)
        else:
            self.progress.reset(self._tasks[name], total=total, description=description or name)

    def advance(self, name: str, completed: int | None = None, description: str | None = None) -> None:
        if self.progress is None or name not in self._tasks:
            return
        if completed is None and description is None:
            self.progress.advance(self._tasks[name])
        else:
            self.progress.update(self._tasks[name], completed=completed, description=description)

    def step(self, step: int, total: int, values: dict[str, float]) -> None:
        if self.on_step is not None:
            self.on_step(step, total, values)

    def close(self) -> None:
        if self.progress is not None:
            for task in self._tasks.values():
                self.progress.remove_task(task)
        self._tasks.clear()

    def silent(self) -> Reporter:
        """A reporter that shows nothing (for ranks other than 0)."""
        quiet = Reporter()
        quiet.skipped = self.skipped
        return quiet


def as_reporter(value: Reporter | Any | None = None, log: Callable[[str], None] | None = None) -> Reporter:
    """A Reporter from what callers pass: a Reporter, a Rich Progress, a step callable, or nothing."""
    if isinstance(value, Reporter):
        if log is not None and value._note is None:
            value._note = log
        return value
    if value is not None and hasattr(value, "add_task"):
        return Reporter(progress=value, note=log)
    if callable(value):
        return Reporter(note=log, on_step=value)
    return Reporter(note=log)

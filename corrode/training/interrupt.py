"""SIGINT and SIGTERM as a request to stop after the current step (what SLURM, Kubernetes and spot
preemption send before they kill a job); a second signal stops at once, keeping the last state."""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

from corrode.errors import CorrodeError

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(CorrodeError):
    """A run stopped by a signal after writing a state that `--resume` continues from.

    `exit_code` is the shell's 128 + signal number: 130 for SIGINT (Ctrl-C), 143 for SIGTERM.
    """

    def __init__(self, signum: int, message: str) -> None:
        self.signum = signum
        self.exit_code = 128 + signum
        super().__init__(message)


class StopSignals:
    """Context manager: while active, the first SIGINT / SIGTERM sets `signum`; the second raises
    KeyboardInterrupt where the process is. Only the main thread can install handlers; elsewhere
    (and when not entered) `signum` stays None unless `request` is called."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def request(self, signum: int = signal.SIGINT) -> None:
        if self.signum is None:
            self.signum = signum

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for number in SIGNALS:
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous.clear()


def signal_name(signum: int) -> str:
    return signal.Signals(signum).name

"""TensorBoard event files beside metrics.csv (`--tensorboard`; needs the `corrode[tensorboard]` extra)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from corrode.errors import UsageError

EXTRA_HINT = "--tensorboard needs the tensorboard package: pip install 'corrode[tensorboard]'"


def check_available() -> None:
    """Raise the one-line UsageError naming the extra when tensorboard cannot be imported."""
    try:
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError as exc:  # torch raises ImportError naming tensorboard when it is missing
        raise UsageError(EXTRA_HINT) from exc


class TensorBoardLog:
    """Scalars (every numeric column of a metrics row) and images, written into the run folder.

    The event file is opened at the first write. In a resumed run that write's step is where the
    state left off, so events the interrupted process logged from there on are purged (TensorBoard's
    `purge_step`), as metrics.csv drops its rows past the state.
    """

    def __init__(self, run_dir: Path, *, resumed: bool = False) -> None:
        check_available()
        self.run_dir, self.resumed = Path(run_dir), resumed
        self._writer: Any = None

    def _open(self, step: int) -> Any:
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            purge = step if self.resumed else None
            self._writer = SummaryWriter(log_dir=str(self.run_dir), purge_step=purge)
        return self._writer

    def scalars(self, row: Mapping[str, Any], step: int) -> None:
        writer = self._open(step)
        for key, value in row.items():
            number = _number(value)
            if number is not None:
                writer.add_scalar(key, number, step)
        writer.flush()

    def image(self, tag: str, array: Any, step: int) -> None:
        """`array`: an `(H, W, 3)` uint8 image."""
        writer = self._open(step)
        writer.add_image(tag, array, step, dataformats="HWC")
        writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None

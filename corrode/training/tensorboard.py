"""TensorBoard event files beside metrics.csv (`--tensorboard`; needs the `corrode[tensorboard]` extra)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from corrode.errors import UsageError

EXTRA_HINT = "--tensorboard needs the tensorboard package: pip install 'corrode[tensorboard]'"


class TensorBoardLog:
    """Scalars (every numeric column of a metrics row) and images, written into the run folder."""

    def __init__(self, run_dir: Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:  # torch raises ImportError naming tensorboard when it is missing
            raise UsageError(EXTRA_HINT) from exc
        self.writer = SummaryWriter(log_dir=str(run_dir))

    def scalars(self, row: Mapping[str, Any], step: int) -> None:
        for key, value in row.items():
            number = _number(value)
            if number is not None:
                self.writer.add_scalar(key, number, step)
        self.writer.flush()

    def image(self, tag: str, array: Any, step: int) -> None:
        """`array`: an `(H, W, 3)` uint8 image."""
        self.writer.add_image(tag, array, step, dataformats="HWC")
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None

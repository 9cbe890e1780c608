"""Run folders: `runs/<name>/` with config.json, weights, state for resume, metrics.csv, figures."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

CONFIG = "config.json"
WEIGHTS = "model.safetensors"
BEST_WEIGHTS = "best.safetensors"
STATE = "state.pt"
METRICS = "metrics.csv"


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
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.columns, extrasaction="ignore")
            if new_file:
                writer.writeheader()
            writer.writerow({k: _format(v) for k, v in row.items()})
            handle.flush()
            os.fsync(handle.fileno())

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


def open_run(
    run_dir: Path, *, resume: bool, model_config: dict, kind: str, required: Iterable[str] = ()
) -> dict | None:
    """The training state to resume from, or None for a fresh run.

    A fresh run refuses a folder that already holds one; a resumed run must hold a state with the
    `required` keys, made for the same `model_config`.
    """
    from corrode import checkpoint
    from corrode.errors import ConfigError, UsageError

    state_path = run_dir / STATE
    if not resume:
        if state_path.exists() or (run_dir / WEIGHTS).exists():
            raise UsageError(
                f"{run_dir}: already holds a run; pass --resume {run_dir} to continue it, or another --out"
            )
        return None
    state = checkpoint.load_state(state_path)
    missing = sorted(set(required) - set(state))
    if missing:
        raise checkpoint.CheckpointError(state_path, f"not a {kind} training state (no {', '.join(missing)})")
    if state.get("model_config") != model_config:
        raise ConfigError(
            f"{run_dir}: the run was trained with model {state.get('model_config')}, "
            f"not {model_config}; resume with the run's own model options"
        )
    return state

"""A run folder opened fresh or resumed under one rule, and what a trainer writes into it.

The rule for `--resume`: the run continues with its own config.json; only the options in
`RESUMABLE` may differ, every other difference is refused with one line naming the option and both
values. A folder holding a state, weights or metrics is a run: a fresh start refuses it.
Saving is always weights, then the metrics row, then the state, each written atomically, so a kill
at any moment leaves a state that matches the weights and the rows (rows past it are dropped on
resume and logged again).
"""

from __future__ import annotations

import dataclasses
import json
import signal
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from corrode import runs
from corrode.config import save_config, to_dict
from corrode.errors import ConfigError, UsageError, WriteError, write_reason
from corrode.training.interrupt import Interrupted, StopSignals, signal_name
from corrode.training.reporter import Reporter
from corrode.training.seeding import seed_everything

if TYPE_CHECKING:
    import torch

    from corrode.distributed import DistContext
    from corrode.training.tensorboard import TensorBoardLog

# The options that may change when a run is resumed, and why; every other option must match.
RESUMABLE: dict[str, str] = {
    "epochs": "train longer",
    "decay_epochs": "reshape the end of a longer run",
    "checkpoint_every": "how often a state is written",
    "device": "where it runs",
    "precision": "autocast on a new device",
    "threads": "CPU threads",
    "workers": "data-loading processes",
    "compile": "torch.compile",
    "tensorboard": "logging",
    "samples": "sample-grid size (logging)",
    "data": "where the same data set lives now",
    "masks": "where its masks live now",
    "out": "the run folder itself",
}
# Files that make a folder a run (a fresh start refuses it).
RUN_FILES = (runs.STATE, runs.WEIGHTS, runs.METRICS)


def resume_differences(config: Any, saved: Mapping[str, Any]) -> list[str]:
    """One 'option: run value -> given value' entry per non-resumable option that differs.

    Options added after the run was made are absent from its config.json: they had their defaults.
    """
    defaults = {f.name: f.default for f in dataclasses.fields(config) if f.default is not dataclasses.MISSING}
    defaults.update(
        {
            f.name: f.default_factory()  # type: ignore[misc]
            for f in dataclasses.fields(config)
            if f.default_factory is not dataclasses.MISSING
        }
    )
    before = {**to_dict_values(defaults), **saved}
    now = to_dict(config)
    return [
        f"{name} {before.get(name)!r} -> {now[name]!r}"
        for name in now
        if name not in RESUMABLE and before.get(name) != now[name]
    ]


def to_dict_values(values: Mapping[str, Any]) -> dict[str, Any]:
    from corrode.config import _plain

    return {key: _plain(value) for key, value in values.items()}


class Run:
    """An open run folder. Only rank 0 writes; every rank takes part in `should_stop`."""

    def __init__(
        self,
        directory: Path,
        *,
        kind: str,
        config: Any,
        state: dict[str, Any] | None,
        context: DistContext,
        reporter: Reporter,
        tensorboard: TensorBoardLog | None,
    ) -> None:
        self.dir = directory
        self.kind = kind
        self.config = config
        self.state = state
        self.context = context
        self.reporter = reporter
        self.tensorboard = tensorboard
        self.metrics = runs.MetricsLog(directory / runs.METRICS)
        self.signals = StopSignals()

    @property
    def resumed(self) -> bool:
        return self.state is not None

    @property
    def is_main(self) -> bool:
        return self.context.is_main

    def note(self, line: str) -> None:
        self.reporter.note(line)

    # --- writing, in the one order: weights, metrics, state
    @contextmanager
    def writing(self, path: Path) -> Iterator[Path]:
        """A write that fails with an OSError (a full disk) becomes one WriteError naming `path`;
        the atomic helpers have already removed their temporary file and kept the previous one."""
        try:
            yield path
        except OSError as exc:
            raise WriteError(path, write_reason(exc)) from exc

    def save_weights(self, path: Path, model: torch.nn.Module, *, kind: str, config: dict[str, Any]) -> None:
        from corrode import checkpoint

        if self.is_main:
            with self.writing(path):
                checkpoint.save_model(path, model, kind=kind, config=config)

    def log(self, row: Mapping[str, Any], step: int) -> None:
        """Append a metrics row (CSV, and TensorBoard when on)."""
        if not self.is_main:
            return
        with self.writing(self.metrics.path):
            self.metrics.append(row)
        if self.tensorboard is not None:
            self.tensorboard.scalars({k: v for k, v in row.items() if k not in ("step", "epoch")}, step)

    def save_state(self, state: dict[str, Any]) -> None:
        from corrode import checkpoint

        if self.is_main:
            path = self.dir / runs.STATE
            with self.writing(path):
                checkpoint.save_state(path, state)

    def write(self, path: Path, writer: Callable[[Path], Any]) -> None:
        """A figure or sample grid: `writer(path)` on rank 0, a failed write named as one line."""
        if self.is_main:
            with self.writing(path):
                writer(path)

    # --- interruption
    def should_stop(self) -> bool:
        """True once SIGINT / SIGTERM arrived on any rank (call between steps, on every rank)."""
        wanted = self.signals.signum is not None
        if self.context.enabled:
            import torch
            import torch.distributed as dist

            flag = torch.tensor([self.signals.signum or 0], dtype=torch.int64, device=self.context.device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            if int(flag) and self.signals.signum is None:
                self.signals.signum = int(flag)
            wanted = bool(int(flag))
        return wanted

    def interrupted(self, where: str) -> Interrupted:
        signum = self.signals.signum or signal.SIGINT
        line = (
            f"{self.dir}: interrupted by {signal_name(signum)} {where}; state written, "
            f"`corrode {self.kind} --resume {self.dir}` continues from there"
        )
        self.note(line)
        return Interrupted(signum, line)

    def __enter__(self) -> Run:
        self.signals.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.signals.__exit__(*exc)
        self.reporter.close()
        if self.tensorboard is not None:
            self.tensorboard.close()


def open_run(
    config: Any,
    *,
    kind: str,
    context: DistContext,
    reporter: Reporter | None = None,
    resume: Path | None = None,
    required: Iterable[str] = (),
) -> Run:
    """Open `config.out` fresh, or the run folder `resume` (whose config.json `config` must match
    but for `RESUMABLE`). Writes config.json (rank 0). `config` must have `out` and `tensorboard`."""
    from corrode import checkpoint

    reporter = reporter or Reporter()
    if getattr(config, "tensorboard", False) and context.is_main:
        from corrode.training.tensorboard import check_available

        check_available()  # before anything is written
    directory = Path(resume) if resume is not None else Path(config.out)
    config = dataclasses.replace(config, out=directory)
    state: dict[str, Any] | None = None
    if resume is not None:
        saved_path = directory / runs.CONFIG
        if not saved_path.exists():
            raise UsageError(f"{directory}: cannot resume, no {runs.CONFIG} (is this a {kind} run folder?)")
        try:
            saved = json.loads(saved_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{saved_path}: not a readable JSON config ({exc})") from exc
        changed = resume_differences(config, saved)
        if changed:
            raise ConfigError(
                f"{directory}: cannot resume with a changed option ({'; '.join(changed)}); "
                f"only {', '.join(RESUMABLE)} may change"
            )
        state = checkpoint.load_state(directory / runs.STATE)
        missing = sorted(set(required) - set(state))
        if missing:
            raise checkpoint.CheckpointError(
                directory / runs.STATE, f"not a {kind} training state (no {', '.join(missing)})"
            )
    else:
        taken = [name for name in RUN_FILES if (directory / name).exists()]
        if taken:
            raise UsageError(
                f"{directory}: already holds a run ({', '.join(taken)}); "
                f"pass --resume {directory} to continue it, or another --out"
            )
    tensorboard = None
    if context.is_main:
        if resume is not None:
            stray = runs.stray_temporaries(directory)
            for path in stray:
                path.unlink(missing_ok=True)
            if stray:
                names = ", ".join(str(p.relative_to(directory)) for p in stray)
                reporter.note(
                    f"{directory}: removed {len(stray)} temporary file(s) of an interrupted write ({names})"
                )
        directory.mkdir(parents=True, exist_ok=True)
        with _naming(directory / runs.CONFIG):
            save_config(config, directory / runs.CONFIG)
        if getattr(config, "tensorboard", False):
            from corrode.training.tensorboard import TensorBoardLog

            tensorboard = TensorBoardLog(directory, resumed=resume is not None)
    if getattr(config, "threads", 0):
        import torch

        torch.set_num_threads(int(config.threads))
    return Run(
        directory,
        kind=kind,
        config=config,
        state=state,
        context=context,
        reporter=reporter if context.is_main else reporter.silent(),
        tensorboard=tensorboard,
    )


@contextmanager
def _naming(path: Path) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise WriteError(path, write_reason(exc)) from exc


__all__ = ["RESUMABLE", "Run", "open_run", "resume_differences", "seed_everything"]

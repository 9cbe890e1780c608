"""What the three trainer commands share: their options declared once per config field, the real
defaults taken from the config dataclass, and one way to resolve `--resume` / `--config` / `--preset`.

A trainer's options are a table `field -> Option(flags, help, choices)`: the Typer signature is built
from it (type and default from the dataclass field), and the values go back to the config by field
name. A value counts as given only when the user typed it (click's parameter source), so a preset
or a `--config` file is never overridden by a default, and `--resume` takes the run's own config.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import os
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import click
import typer

from corrode.cli.app import EXIT_FAILED, app, emit_json, fail_line, make_progress, note, settings, warn

# Kept equal to corrode.device's names by a test (importing it here would import torch for --help).
DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@dataclass(frozen=True)
class Option:
    """One command-line option of a config field. `parse` turns the typed string into the field's value."""

    flags: tuple[str, ...]
    help: str
    choices: tuple[str, ...] = ()
    parse: Callable[[str], Any] | None = None
    shown: str | None = None  # how the default reads in --help when it is not the field's value


# Options every trainer has.
COMMON: dict[str, Option] = {
    "out": Option(("--out", "-o"), "Run folder."),
    "seed": Option(("--seed",), "Seed of the split, initialisation and sampling."),
    "device": Option(("--device",), "Where to train.", DEVICES),
    "precision": Option(("--precision",), "Autocast precision (auto: bf16/fp16 where it helps).", PRECISIONS),
    "threads": Option(("--threads",), "CPU threads for torch (0: torch's default)."),
    "compile": Option(("--compile/--no-compile",), "torch.compile the training network."),
    "tensorboard": Option(
        ("--tensorboard/--no-tensorboard",),
        "Also write metrics (and sample grids) as TensorBoard events in the run folder "
        "(pip install 'corrode\\[tensorboard]').",
    ),
}


@dataclass(frozen=True)
class Trainer:
    """A trainer command: its config class, its own options, presets, and how to run and summarise it."""

    name: str
    config: str  # "module:Class", imported when the command runs (keeps --help fast)
    train: str  # "module:function"
    data_help: str
    options: dict[str, Option]
    doc: str
    presets: dict[str, str] = field(default_factory=dict)  # name -> help; values from `presets_from`
    presets_from: str = ""  # "module:PRESETS"
    summary: Callable[[Path], dict[str, Any]] | None = None
    on_step: Callable[[Any], Callable[[int, int, dict[str, float]], None]] | None = None


def _load(reference: str) -> Any:
    import importlib

    module, _, name = reference.partition(":")
    return getattr(importlib.import_module(module), name)


def _field_type(annotation: Any) -> Any:
    """The click-facing type of a config field: tuples are typed as text and parsed."""
    origin = typing.get_origin(annotation)
    if origin is tuple:
        return str
    return annotation


def choice_type(name: str, choices: tuple[str, ...]) -> type[enum.Enum]:
    """A str Enum of `choices`, so that --help lists them and click refuses anything else."""
    return enum.Enum(f"{name}_choices", {choice: choice for choice in choices}, type=str)  # type: ignore[return-value]


def _defaults(config_class: type) -> dict[str, Any]:
    values = {}
    for item in dataclasses.fields(config_class):
        if item.default is not dataclasses.MISSING:
            values[item.name] = item.default
        elif item.default_factory is not dataclasses.MISSING:
            values[item.name] = item.default_factory()
        else:
            values[item.name] = None
    return values


def _parameter(name: str, option: Option, annotation: Any, default: Any) -> inspect.Parameter:
    kind = _field_type(annotation)
    if option.parse is not None and isinstance(default, tuple):
        default = ",".join(str(v) for v in default)
    info = typer.Option(
        *option.flags,
        help=option.help + (f" [default: {option.shown}]" if option.shown else ""),
        show_default=option.shown is None,
    )
    if option.choices:
        kind = choice_type(name, option.choices)
        default = kind(default)
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=Annotated[kind, info]
    )


def register(trainer: Trainer) -> None:
    """Add `trainer` to the app, its options built from its config class's fields."""
    config_class = _load(trainer.config)
    hints = typing.get_type_hints(config_class)
    defaults = _defaults(config_class)
    options = {**trainer.options, **COMMON}
    params = [
        inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context),
        inspect.Parameter(
            "data",
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            default=None,
            annotation=Annotated[Path | None, typer.Argument(help=trainer.data_help, show_default=False)],
        ),
    ]
    params += [_parameter(name, opt, hints[name], defaults[name]) for name, opt in options.items()]
    extra: dict[str, tuple[Any, Any]] = {
        "resume": (
            Path | None,
            typer.Option("--resume", help="Continue this run folder where its last state left it."),
        ),
        "config_file": (
            Path | None,
            typer.Option("--config", help="Start from a config.json (options typed here override it)."),
        ),
        "json_summary": (bool, typer.Option("--json", help="Print a JSON summary on stdout.")),
        "quiet": (bool, typer.Option("--quiet", "-q", help="No progress bars or notes.")),
    }
    if trainer.presets:
        lines = "; ".join(f"{name}: {text}" for name, text in trainer.presets.items())
        extra["preset"] = (
            choice_type("preset", tuple(trainer.presets)),
            typer.Option("--preset", help=f"Defaults for the options not typed. {lines}."),
        )
    for name, (kind, info) in extra.items():
        default: Any = None if kind is not bool else False
        if name == "preset":
            default = kind(next(iter(trainer.presets)))
        params.append(
            inspect.Parameter(
                name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=Annotated[kind, info]
            )
        )

    def command(ctx: typer.Context, **values: Any) -> None:
        _run(trainer, ctx, values, options)

    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    command.__doc__ = trainer.doc
    command.__name__ = trainer.name.replace("-", "_") + "_command"
    app.command(trainer.name)(command)


def typed(ctx: click.Context, names: Sequence[str]) -> set[str]:
    """The parameters the user typed (or set through the environment), not left at their default."""
    # By name: Typer may carry its own copy of click, whose ParameterSource is another enum.
    typed_sources = ("COMMANDLINE", "ENVIRONMENT")
    return {name for name in names if getattr(ctx.get_parameter_source(name), "name", "") in typed_sources}


def resolve_config(
    config_class: type,
    values: dict[str, Any],
    given: set[str],
    *,
    resume: Path | None,
    config_file: Path | None,
    preset: dict[str, Any] | None = None,
) -> Any:
    """The config to run: typed options over (the resumed run's config.json | preset over --config
    file over the defaults). `values` holds every option's value by field name; `given` the typed ones."""
    from corrode.config import load_config
    from corrode.errors import UsageError
    from corrode.runs import CONFIG

    chosen = {name: values[name] for name in given if name in values}
    if resume is not None:
        if config_file is not None:
            raise UsageError("--resume takes the run's own config.json; drop --config")
        if chosen.get("out") not in (None, resume):
            warn(f"--out {chosen['out']} ignored: a resumed run keeps writing into {resume}")
        chosen.pop("out", None)
        base = load_config(config_class, Path(resume) / CONFIG)
        return dataclasses.replace(base, **chosen)
    merged = dict(values)
    if config_file is not None:
        loaded = load_config(config_class, config_file)
        merged.update({item.name: getattr(loaded, item.name) for item in dataclasses.fields(loaded)})
    merged.update(preset or {})
    merged.update(chosen)
    if merged.get("data") is None:
        raise UsageError("missing DATA")
    known = {item.name for item in dataclasses.fields(config_class)}
    return config_class(**{k: v for k, v in merged.items() if k in known})


def _run(trainer: Trainer, ctx: typer.Context, values: dict[str, Any], options: dict[str, Option]) -> None:
    from corrode.errors import UsageError
    from corrode.training import Reporter

    if values.pop("quiet"):
        settings.quiet = True
    resume, config_file = values.pop("resume"), values.pop("config_file")
    json_summary = values.pop("json_summary")
    preset_name = values.pop("preset", None)
    config_class = _load(trainer.config)
    values = {k: v.value if isinstance(v, enum.Enum) else v for k, v in values.items()}
    if isinstance(preset_name, enum.Enum):
        preset_name = preset_name.value
    for name, option in options.items():
        if option.parse is not None and isinstance(values.get(name), str):
            try:
                values[name] = option.parse(values[name])
            except ValueError as exc:
                raise UsageError(f"{option.flags[0]}: {exc}") from exc
    given = typed(ctx, [*options, "data"])
    preset = None
    if trainer.presets_from and preset_name is not None:
        preset = _load(trainer.presets_from)[preset_name]
    try:
        config = resolve_config(
            config_class, values, given, resume=resume, config_file=config_file, preset=preset
        )
    except UsageError as exc:
        if str(exc) == "missing DATA":
            raise UsageError(f"missing DATA: {trainer.data_help}") from None
        raise
    with make_progress(transient=True) as progress:
        on_step = trainer.on_step(progress) if trainer.on_step is not None else None
        reporter = Reporter(progress=progress, note=note, on_step=on_step)
        run_dir = _load(trainer.train)(config, reporter, resume=resume)
    note(f"run written to {run_dir}")
    if json_summary and os.environ.get("RANK", "0") == "0":  # one summary under torchrun
        summary = {"run": str(run_dir), "skipped": len(reporter.skipped)}
        if trainer.summary is not None:
            summary.update(trainer.summary(run_dir))
        emit_json(summary)
    if reporter.skipped:
        fail_line(f"{len(reporter.skipped)} input(s) skipped (named above); trained on the rest")
        raise typer.Exit(EXIT_FAILED)


def decoder_widths(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"expected four integers like 512,256,128,64, got {text!r}") from None

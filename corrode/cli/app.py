"""The Typer app, its global options, the shared Rich consoles and error -> exit-code mapping.

Exit codes: 0 ok, 1 some inputs failed (or the work itself failed, a full disk included), 2 usage
error, 130 interrupted. Messages and progress go to stderr; results go to stdout. The global
`--quiet`/`--debug` are taken before or after the subcommand; a usage error is Click's one plain
`Error: ...` line unless stderr is a terminal, where Typer draws its box.
Heavy libraries (torch, cv2) are imported inside command bodies so `--help` stays fast.
"""

from __future__ import annotations

import errno
import json
import os
import sys
from dataclasses import dataclass
from typing import Annotated, Any

import click
import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from corrode import __version__
from corrode.errors import CorrodeError

try:  # Typer 0.26 and later carry their own copy of Click, whose errors are not click's
    from typer._click.exceptions import ClickException
except ImportError:  # pragma: no cover - older Typer on the installed Click
    from click.exceptions import ClickException

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

# Rich resolves sys.stderr / sys.stdout at write time, so CliRunner captures both.
# soft_wrap: one message stays one line when stderr is a pipe or a file (Rich would cut it at 80 columns).
console = Console(stderr=True, highlight=False, soft_wrap=True)
stdout = Console(highlight=False, soft_wrap=True)


@dataclass
class Settings:
    quiet: bool = False
    debug: bool = False


settings = Settings()


def _debug_enabled() -> bool:
    return settings.debug or os.environ.get("CORRODE_DEBUG", "") not in ("", "0")


DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG})

# The root's own flags, also accepted anywhere after the subcommand (`corrode synth OUT -q`).
GLOBAL_FLAGS = frozenset({"-q", "--quiet", "--debug"})


def hoist_global_flags(args: list[str]) -> list[str]:
    """Move the global flags found after the subcommand name to before it, up to a `--`."""
    command = next((i for i, arg in enumerate(args) if not arg.startswith("-")), None)
    if command is None:
        return args
    head, tail = list(args[:command]), list(args[command:])
    moved: list[str] = []
    kept: list[str] = []
    for index, arg in enumerate(tail):
        if arg == "--":
            kept.extend(tail[index:])
            break
        (moved if index > 0 and arg in GLOBAL_FLAGS else kept).append(arg)
    return head + moved + kept


def stderr_is_terminal() -> bool:
    return console.is_terminal


def _plain_usage_error(exc: ClickException) -> typer.Exit:
    """Click's one `Error: ...` line for logs and pipes; on a terminal Typer draws its box instead."""
    sys.stderr.write(f"Error: {exc.format_message()}\n")
    sys.stderr.flush()
    return typer.Exit(exc.exit_code)


class CorrodeGroup(TyperGroup):
    """Turns library errors into one line and an exit code; tracebacks only with --debug.

    Takes the global `--quiet`/`--debug` after the subcommand as well as before it, and prints a
    usage error as one plain line when stderr is not a terminal.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, hoist_global_flags(args))
        except ClickException as exc:
            if stderr_is_terminal():
                raise
            raise _plain_usage_error(exc) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ClickException as exc:
            if stderr_is_terminal():
                raise
            raise _plain_usage_error(exc) from None
        except CorrodeError as exc:
            if _debug_enabled():
                console.print_exception()
            console.print(f"[bold red]error:[/] {escape(str(exc))}", markup=True, highlight=False)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            console.print("[yellow]interrupted[/]")
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except OSError as exc:
            # A full or read-only disk is the user's to fix, not a bug: one line, whoever wrote.
            if exc.errno not in DISK_ERRNOS or _debug_enabled():
                raise
            where = f"{exc.filename}: " if exc.filename else ""
            console.print(f"[bold red]error:[/] {where}{os.strerror(exc.errno).lower()}", highlight=False)
            raise typer.Exit(EXIT_FAILED) from None


app = typer.Typer(
    name="corrode",
    cls=CorrodeGroup,
    help="Show what a car will look like when it corrodes: none, mild, moderate or severe.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        stdout.print(f"corrode {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or notes.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks (also CORRODE_DEBUG=1).")] = False,
) -> None:
    settings.quiet = quiet
    settings.debug = debug


def note(message: str) -> None:
    """A human-readable line on stderr, unless --quiet."""
    if not settings.quiet:
        console.print(escape(message), highlight=False)


def warn(message: str) -> None:
    console.print(f"[yellow]warning:[/] {escape(message)}", highlight=False)


def fail_line(message: str) -> None:
    """One line for one failed input in a batch (always shown, even with --quiet)."""
    console.print(f"[red]error:[/] {escape(message)}", highlight=False)


def emit_json(data: Any) -> None:
    """One JSON object on one stdout line (for --json)."""
    sys.stdout.write(json.dumps(data, default=str) + "\n")
    sys.stdout.flush()


def progress_enabled() -> bool:
    return not settings.quiet and console.is_terminal


def make_progress(*, transient: bool = False):  # -> rich.progress.Progress
    """A Rich progress bar on stderr, disabled when stderr is not a TTY or with --quiet."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not progress_enabled(),
        transient=transient,
    )

"""`corrode label`: label images in the browser; `stats`, `export` and `import` for the label database.

`corrode label IMAGES ...` is short for `corrode label serve IMAGES ...`: the group runs `serve`
whenever its first argument is not one of its subcommands.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from corrode.cli.app import EXIT_FAILED, app, console, emit_json, fail_line, note, stdout, warn

DEFAULT_COMMAND = "serve"


class LabelGroup(TyperGroup):
    """A group whose `serve` subcommand is also what it runs when given images directly."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:  # type: ignore[override]
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = [DEFAULT_COMMAND, *args]
        return super().parse_args(ctx, args)


label_app = typer.Typer(
    cls=LabelGroup,
    no_args_is_help=True,
    help="Label images by keyboard in the browser, for several annotators, and measure their agreement. "
    "`corrode label IMAGES --db labels.sqlite --annotator NAME` is short for `corrode label serve ...`.",
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(label_app, name="label")

DbOption = Annotated[Path, typer.Option("--db", help="The label database (SQLite), created if missing.")]
ExistingDb = Annotated[Path, typer.Option("--db", help="The label database (SQLite).")]


def _open_browser(url: str) -> None:
    import webbrowser

    threading.Timer(0.5, webbrowser.open, args=(url,)).start()


@label_app.command("serve")
def serve_command(
    images: Annotated[
        list[Path], typer.Argument(help="Image files or folders (searched recursively).", show_default=False)
    ],
    db: DbOption,
    annotator: Annotated[str, typer.Option("--annotator", "-a", help="Your name, stored with each label.")],
    port: Annotated[int, typer.Option("--port", help="Port to listen on (0: a free one).")] = 0,
    host: Annotated[
        str | None,
        typer.Option("--host", help="Address to listen on (default 127.0.0.1; others are reachable by all)."),
    ] = None,
    no_browser: Annotated[bool, typer.Option("--no-browser", help="Print the URL, do not open it.")] = False,
    order: Annotated[
        str, typer.Option("--order", help="random, name, or uncertain (most disputed / least sure first).")
    ] = "random",
    scores: Annotated[
        Path | None,
        typer.Option("--scores", help="A classifier's scores for --order uncertain: CSV path,none,mild,..."),
    ] = None,
    max_side: Annotated[
        int, typer.Option("--max-side", help="Downscale images to this longest side.")
    ] = 1600,
) -> None:
    """Serve a keyboard labeling page: 1-4 levels, x reject, s skip, z undo, arrows back and forward."""
    from corrode.label.server import LabelConfig, is_loopback, serve

    config = LabelConfig(
        images=tuple(images),
        db=db,
        annotator=annotator,
        host=host or "127.0.0.1",
        port=port,
        order=order,
        scores=scores,
        max_side=max_side,
    )
    if host is not None and not is_loopback(host):
        warn(f"listening on {host}: anyone who can reach this address can see the images and label them")

    def announce(url: str, session: Any) -> None:
        progress = session.progress()
        note(
            f"{progress['total']} images, {progress['done']} labelled by {session.annotator}; "
            f"database {db}; press Ctrl-C to stop"
        )
        stdout.print(url)
        if not no_browser:
            _open_browser(url)

    serve(config, report=fail_line, announce=announce)


@label_app.command("stats")
def stats_command(
    db: ExistingDb,
    json_output: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
) -> None:
    """Images, labels per annotator, per-level counts, rejects, and agreement between annotators."""
    from corrode.label.stats import stats

    summary = stats(db)
    if json_output:
        emit_json(summary)
        return
    _print_stats(summary)


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _print_stats(summary: dict) -> None:
    from rich.table import Table

    from corrode import levels

    stdout.print(
        f"{summary['images']} images ({summary['bad_images']} unreadable), "
        f"{summary['labelled_images']} labelled, {summary['rejected_images']} rejected by someone"
    )
    table = Table("annotator", "labels", *levels.NAMES, "rejected", "skipped", title="labels per annotator")
    for name, entry in summary["annotators"].items():
        table.add_row(
            name,
            str(entry["labels"]),
            *(str(entry["levels"][level]) for level in levels.NAMES),
            str(entry["rejected"]),
            str(entry["skipped"]),
        )
    table.add_row("all", "", *(str(summary["levels"][level]) for level in levels.NAMES), "", "")
    stdout.print(table)
    agreement = summary["agreement"]
    stdout.print(f"images with several votes: {agreement['images_with_several_votes']}")
    for pair in agreement["cohen_kappa_quadratic"]:
        stdout.print(
            f"  Cohen's kappa (quadratic) {pair['first']} / {pair['second']}: "
            f"{_number(pair['kappa'])} on {pair['images']} images"
        )
    stdout.print(f"  Fleiss' kappa: {_number(agreement['fleiss_kappa'])}")
    stdout.print(f"  Krippendorff's alpha (ordinal): {_number(agreement['krippendorff_alpha_ordinal'])}")


@label_app.command("export")
def export_command(
    db: ExistingDb,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for <level>/ folders and labels.csv.")],
    min_votes: Annotated[
        int, typer.Option("--min-votes", help="Leave out images with fewer level votes.")
    ] = 1,
    max_spread: Annotated[
        int | None,
        typer.Option(
            "--max-spread", help="Leave out images whose votes span more levels apart (1: neighbours)."
        ),
    ] = None,
    link: Annotated[bool, typer.Option("--link", help="Hard links instead of copies.")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
) -> None:
    """Write level folders and a CSV, one level per image: the median of its votes."""
    from corrode.label.export import ExportConfig, export

    result = export(ExportConfig(db=db, out=out, min_votes=min_votes, max_spread=max_spread, link=link))
    for line in result.failed:
        fail_line(line)
    if json_output:
        emit_json(
            {
                "exported": result.exported,
                "left_out": result.left_out,
                "failed": len(result.failed),
                "csv": str(result.csv_path),
            }
        )
    else:
        counts = ", ".join(f"{name} {count}" for name, count in result.exported.items())
        note(f"exported {sum(result.exported.values())} images to {out}: {counts}")
        for reason, count in result.left_out.items():
            note(f"left out {count}: {reason}")
        stdout.print(str(result.csv_path))
    if result.failed:
        raise typer.Exit(EXIT_FAILED)


@label_app.command("import")
def import_command(
    folder: Annotated[Path, typer.Argument(help="Folder with none/ mild/ moderate/ severe/ sub-folders.")],
    db: DbOption,
    annotator: Annotated[
        str | None,
        typer.Option("--annotator", "-a", help="Name to store the labels under (default: FOLDER's)."),
    ] = None,
) -> None:
    """Import existing level folders as one annotator's labels."""
    from corrode.label.importer import import_levels

    name = annotator or folder.resolve().name
    result = import_levels(db, folder, name)
    for line in result.failed:
        fail_line(line)
    counts = ", ".join(f"{level} {count}" for level, count in result.imported.items())
    note(f"imported {sum(result.imported.values())} labels as {name!r}: {counts}")
    if result.failed:
        raise typer.Exit(EXIT_FAILED)


__all__ = ["label_app", "console"]

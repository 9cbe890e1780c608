"""`corrode render`: photos in, the same photos with the car corroded out."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from corrode.cli.app import EXIT_FAILED, app, emit_json, fail_line, make_progress, note

ALL = "all"
EXIT_TERMINATED = 143  # 128 + SIGTERM, as a shell reports a job the signal ended


@app.command("render")
def render_command(
    inputs: Annotated[
        list[str],
        typer.Argument(
            help="Photos, folders, glob patterns, or '-' to read paths from stdin.", show_default=False
        ),
    ],
    level: Annotated[
        str, typer.Option("--level", "-l", help="mild, moderate, severe, or all (also writes a grid).")
    ] = "severe",
    out_dir: Annotated[
        Path | None,
        typer.Option("--out-dir", "-o", help="Folder for <stem>_<level>.<ext> (default: beside each photo)."),
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Output file, for one input photo.")] = None,
    gan: Annotated[
        str | None,
        typer.Option("--gan", help="GAN run folder or .safetensors, or 'demo' (default $CORRODE_HOME/gan)."),
    ] = None,
    seg: Annotated[
        str | None, typer.Option("--seg", help="Segmenter run folder or .safetensors, or 'demo'.")
    ] = None,
    mask: Annotated[
        Path | None,
        typer.Option("--mask", help="Car mask file (one photo) or folder of <stem>.png masks: no segmenter."),
    ] = None,
    composite: Annotated[
        bool,
        typer.Option(
            "--composite/--no-composite", help="Full photo, or the paper's masked square at model size."
        ),
    ] = True,
    timeline: Annotated[
        Path | None,
        typer.Option("--timeline", help="Also write a GIF easing from none to severe (one photo)."),
    ] = None,
    recursive: Annotated[bool, typer.Option("--recursive", "-r", help="Look inside sub-folders.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Redo outputs that already exist.")] = False,
    json_lines: Annotated[bool, typer.Option("--json", help="One JSON object per output on stdout.")] = False,
    suffix: Annotated[
        str | None, typer.Option("--format", help="Output format: jpg, png, webp... (default: the input's).")
    ] = None,
    batch_size: Annotated[
        int, typer.Option("--batch-size", help="Photos per generator call (0: 1 on CPU, 8 on GPU).")
    ] = 0,
    margin: Annotated[
        float, typer.Option("--margin", help="Margin around the car, fraction of its size.")
    ] = 0.08,
    feather: Annotated[
        float, typer.Option("--feather", help="Soft edge inside the mask, model pixels.")
    ] = 2.0,
    gan_size: Annotated[
        str,
        typer.Option(
            "--gan-size",
            help="Generator working size: 'model' (its training size), a side in px (multiple of 4), "
            "or 'native' (the car's own size, at most --max-side).",
        ),
    ] = "model",
    max_side: Annotated[
        int, typer.Option("--max-side", help="Largest working side for --gan-size native, px.")
    ] = 2048,
    tile: Annotated[
        int,
        typer.Option("--tile", help="Tile side, px (0: tile only where memory needs it)."),
    ] = 0,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda or mps.")] = "auto",
    precision: Annotated[str, typer.Option("--precision", help="auto, fp32, bf16 or fp16.")] = "auto",
    engine: Annotated[str, typer.Option("--engine", help="Generator engine: auto, torch or onnx.")] = "auto",
) -> None:
    """Render photos of clean cars at a corrosion level, same size, background untouched."""
    from corrode import levels
    from corrode.distributed import launched_by_torchrun, setup, teardown
    from corrode.render import RenderConfig, Terminated, render

    names = levels.RUSTY_NAMES if level.strip().lower() == ALL else (levels.get(level).name,)
    config = RenderConfig(
        inputs=tuple(inputs),
        levels=tuple(names),
        gan=gan,
        seg=seg,
        mask=mask,
        out_dir=out_dir,
        out=out,
        suffix=suffix,
        composite=composite,
        grid=level.strip().lower() == ALL,
        timeline=timeline,
        recursive=recursive,
        overwrite=overwrite,
        margin=margin,
        feather=feather,
        gan_size=gan_size,
        max_side=max_side,
        tile=tile,
        batch_size=batch_size,
        device=device,
        precision=precision,
        engine=engine,
    )
    context = setup(device) if launched_by_torchrun() else None
    if context is not None and context.enabled:
        from dataclasses import replace

        config = replace(config, device=str(context.device))

    def report(outcome) -> None:
        if outcome.status == "failed":
            fail_line(outcome.error or str(outcome.input))
        if json_lines:
            emit_json(outcome.as_dict())

    try:
        with make_progress() as progress:
            task = progress.add_task("rendering", total=None)

            def advance(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            summary = render(
                config, stdin=sys.stdin, context=context, on_outcome=report, on_note=note, progress=advance
            )
    except Terminated:
        # Outputs written so far are complete; a rerun skips them and redoes the unfinished photo.
        fail_line("terminated (SIGTERM): finished outputs are kept, a rerun renders the rest")
        raise typer.Exit(EXIT_TERMINATED) from None
    finally:
        if context is not None:
            teardown(context)
    note(summary.line())
    written = [o.output for o in summary.outcomes if o.status == "written" and o.output is not None]
    if written and not json_lines and len(written) <= 8:
        for path in written:
            note(f"  {path}")
    if summary.failed:
        raise typer.Exit(EXIT_FAILED)

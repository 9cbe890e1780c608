"""`corrode augment`: augmented image + mask pairs, the paper's partial views and random ops."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from corrode.cli.app import EXIT_FAILED, app, emit_json, fail_line, make_progress, note


@app.command("augment")
def augment_command(
    source: Annotated[
        Path, typer.Argument(help="Pairs: Carvana layout (train/ + train_masks/) or images/ + masks/.")
    ],
    out: Annotated[Path, typer.Argument(help="Output folder: OUT/images + OUT/masks (PNG).")],
    preset: Annotated[
        list[str] | None,
        typer.Option(
            "--preset",
            "-p",
            metavar="NAME",
            help="partial-views (left, centre and right crops of each car) or random (flip, resized "
            "crop, small affine, colour jitter). Give both to randomise each view. [default: partial-views]",
            show_default=False,
        ),
    ] = None,
    copies: Annotated[int, typer.Option("--copies", "-n", help="Random variants per pair (or view).")] = 1,
    size: Annotated[int, typer.Option("--size", help="Side of the square outputs in pixels.")] = 256,
    view_fraction: Annotated[
        float, typer.Option("--view-fraction", help="Width of a partial view, as a fraction of the car's.")
    ] = 0.5,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random preset.")] = 0,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda or mps.")] = "auto",
    batch_size: Annotated[int, typer.Option("--batch-size", help="Pairs augmented together.")] = 8,
    json_output: Annotated[bool, typer.Option("--json", help="Print a JSON summary on stdout.")] = False,
) -> None:
    """Write augmented copies of image + mask pairs, masks kept aligned and binary.

    Output stems keep the input's with a suffix per variant:
    car_left, car_centre, car_right (partial-views), car_rand00 (random), car_left_rand00 (both).
    Inputs are never modified; a bad pair is reported and the others are still written.
    """
    from corrode.augment import PARTIAL_VIEWS, AugmentConfig, PipelineConfig, augment
    from corrode.datasets import find_pairs

    config = AugmentConfig(
        source=source,
        out=out,
        presets=tuple(dict.fromkeys(preset or [PARTIAL_VIEWS])),
        copies=copies,
        seed=seed,
        device=device,
        batch_size=batch_size,
        view_fraction=view_fraction,
        pipeline=PipelineConfig(size=size),
    )
    total = len(find_pairs(source))
    with make_progress() as progress:
        task = progress.add_task("augment", total=total)
        result = augment(config, on_pair=lambda: progress.advance(task))
    for line in result.failed:
        fail_line(line)
    note(f"{result.pairs} pair(s) in, {result.written} pair(s) written to {out}, {len(result.failed)} failed")
    if json_output:
        emit_json(
            {"pairs": result.pairs, "written": result.written, "failed": result.failed, "out": str(out)}
        )
    if result.failed:
        raise typer.Exit(EXIT_FAILED)

"""`corrode optimize-masks`: car masks and background-free images for a data set."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from corrode.cli.app import EXIT_FAILED, app, emit_json, fail_line, make_progress, note


@app.command("optimize-masks")
def optimize_masks_command(
    data: Annotated[
        Path,
        typer.Argument(help="Level folders (none/ mild/ moderate/ severe/) or a plain folder of images."),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.", show_default=False)],
    seg: Annotated[
        str | None,
        typer.Option(
            "--seg",
            help="Segmentation model: run folder, .safetensors file or demo. [default: $CORRODE_HOME/seg]",
        ),
    ] = None,
    masks: Annotated[
        Path | None,
        typer.Option("--masks", help="Existing masks laid out like DATA: run only the optimizer, no model."),
    ] = None,
    fraction: Annotated[
        float, typer.Option("--fraction", help="Regions below this share of the image are holes or specks.")
    ] = 0.1,
    connectivity: Annotated[
        int, typer.Option("--connectivity", help="1: regions join through edges, 2: through corners too.")
    ] = 1,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda or mps.")] = "auto",
    batch_size: Annotated[int, typer.Option("--batch-size", help="Images segmented together.")] = 8,
    json_output: Annotated[bool, typer.Option("--json", help="Print a JSON summary on stdout.")] = False,
) -> None:
    """Segment the car in every image, clean its mask, and write the image with a black background.

    Threshold: Otsu on the probability map, 0.5 where Otsu has no two modes. Optimizer (the paper's):
    background regions under --fraction of the image become car, then car regions under it become
    background. Writes OUT/<level>/<stem>.png (masked images), OUT/masks/<level>/<stem>.png and
    OUT/masks.csv. Inputs are never modified; a bad image is reported and the rest processed.
    """
    from corrode.optimize_masks import OptimizeMasksConfig, find_inputs, optimize_masks

    config = OptimizeMasksConfig(
        data=data,
        out=out,
        seg=seg,
        masks=masks,
        fraction=fraction,
        connectivity=connectivity,
        device=device,
        batch_size=batch_size,
    )
    total = len(find_inputs(data))
    with make_progress() as progress:
        task = progress.add_task("optimize-masks", total=total)
        result = optimize_masks(config, on_image=lambda: progress.advance(task))
    for line in result.failed:
        fail_line(line)
    note(
        f"{total} image(s): {len(result.rows)} masked into {out}, {len(result.failed)} failed; "
        f"table in {result.csv_path}"
    )
    if json_output:
        emit_json(
            {
                "images": total,
                "done": len(result.rows),
                "failed": result.failed,
                "out": str(out),
                "csv": str(result.csv_path),
            }
        )
    if result.failed:
        raise typer.Exit(EXIT_FAILED)

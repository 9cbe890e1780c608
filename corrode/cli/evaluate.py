"""`corrode evaluate`: level accuracy, FID/KID, cycle error, colour kept and coverage of a trained GAN."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from corrode.cli.app import EXIT_FAILED, app, emit_json, note, stdout


@app.command("evaluate")
def evaluate_command(
    gan: Annotated[
        str | None,
        typer.Option("--gan", help="GAN run folder or .safetensors, or 'demo' (default $CORRODE_HOME/gan)."),
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            help="Level folders none/ mild/ moderate/ severe/ (masks in DATA_masks/), or a synth folder.",
        ),
    ] = None,
    classifier: Annotated[
        str | None,
        typer.Option(
            "--classifier", help="Classifier run folder (trained on real images) for accuracy and FID."
        ),
    ] = None,
    sources: Annotated[
        Path | None,
        typer.Option("--sources", help="Held-out clean cars to translate (default: DATA's none/)."),
    ] = None,
    masks: Annotated[Path | None, typer.Option("--masks", help="Masks root <level>/<stem>.png.")] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Report folder (default: the GAN run folder).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="Clean cars to translate at most.")] = 64,
    real_limit: Annotated[int, typer.Option("--real-limit", help="Real cars per level at most.")] = 256,
    render_checks: Annotated[
        int, typer.Option("--render-checks", help="Full-size composites checked for changes outside the car.")
    ] = 8,
    features: Annotated[
        str, typer.Option("--features", help="FID/KID features: classifier (offline) or inception.")
    ] = "classifier",
    inception_weights: Annotated[
        Path | None,
        typer.Option("--inception-weights", help="torch-fidelity Inception weights file (no download)."),
    ] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Images per model call.")] = 16,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda or mps.")] = "auto",
    precision: Annotated[str, typer.Option("--precision", help="auto, fp32, bf16 or fp16.")] = "auto",
    json_report: Annotated[bool, typer.Option("--json", help="Print the report as JSON on stdout.")] = False,
) -> None:
    """Measure how good a GAN's translations are, level by level (report.json, report.md, report.png)."""
    from corrode.evaluate import EvaluateConfig, evaluate

    cfg = EvaluateConfig(
        gan=gan,
        data=data,
        classifier=classifier,
        masks=masks,
        sources=sources,
        out=out,
        limit=limit,
        real_limit=real_limit,
        render_checks=render_checks,
        features=features,
        inception_weights=inception_weights,
        batch_size=batch_size,
        device=device,
        precision=precision,
    )
    report = evaluate(cfg, log=note)
    if json_report:
        emit_json(report.as_dict())
    else:
        stdout.print(report.markdown(), markup=False, highlight=False)
    if report.folder:
        note(f"report written to {report.folder}")
    else:
        note("no report folder (give --out, or a GAN run folder): report printed only")
    if report.skipped:
        note(f"{len(report.skipped)} file(s) could not be read (named above); the rest were measured")
        raise typer.Exit(EXIT_FAILED)

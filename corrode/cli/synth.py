"""`corrode synth OUT`: draw a synthetic car data set (Carvana-style pairs and four corrosion levels)."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer

from corrode import levels
from corrode.cli.app import app, emit_json, make_progress, note


@app.command("synth")
def synth_command(
    out: Annotated[Path, typer.Argument(help="Folder to write the data set into (new or empty).")],
    none: Annotated[int, typer.Option("--none", help="Clean cars (level none).")] = 300,
    mild: Annotated[int, typer.Option("--mild", help="Mildly rusted cars.")] = 65,
    moderate: Annotated[int, typer.Option("--moderate", help="Moderately rusted cars.")] = 97,
    severe: Annotated[int, typer.Option("--severe", help="Severely rusted cars.")] = 73,
    carvana_cars: Annotated[
        int, typer.Option("--carvana-cars", help="Clean studio cars for segmentation (carvana/ folder).")
    ] = 20,
    carvana_views: Annotated[int, typer.Option("--carvana-views", help="Views per Carvana car (1-16).")] = 8,
    size: Annotated[int, typer.Option("--size", help="Image side in pixels (square images).")] = 256,
    label_noise: Annotated[
        float,
        typer.Option("--label-noise", help="Fraction of level images filed under a neighbouring level."),
    ] = 0.0,
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same pixels.")] = 0,
    workers: Annotated[int, typer.Option("--workers", help="Drawing processes (0 or 1: no pool).")] = 2,
    rust_style: Annotated[
        str,
        typer.Option(
            "--rust-style",
            help="photo: photo-scanned rust, chipped paint, blisters, run-off streaks; flat: the original "
            "flat orange-brown look. Same rust pixels either way.",
        ),
    ] = "photo",
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace a previous synth set in OUT (other files are kept).")
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print a JSON summary on stdout.")] = False,
) -> None:
    """Draw procedural car photos with exact masks and rust of known coverage, so that every command
    runs with no download. The level folder is the given label; manifest.csv keeps the truth."""
    from corrode.synth import MANIFEST, PREVIEW, SynthConfig, read_manifest, synth

    config = SynthConfig(
        out=out,
        none=none,
        mild=mild,
        moderate=moderate,
        severe=severe,
        carvana_cars=carvana_cars,
        carvana_views=carvana_views,
        size=size,
        label_noise=label_noise,
        seed=seed,
        workers=workers,
        overwrite=overwrite,
        rust_style=rust_style,
    )
    start = time.perf_counter()
    with make_progress() as progress:
        task = progress.add_task("drawing cars", total=config.total)
        synth(config, progress=lambda done, total: progress.update(task, completed=done))
    seconds = time.perf_counter() - start
    rows = read_manifest(out / MANIFEST)
    labels = Counter(row["label"] for row in rows if row["set"] == "levels")
    per_level = {name: labels.get(name, 0) for name in levels.NAMES}
    moved = sum(row["label"] != row["true_level"] for row in rows)
    carvana = sum(row["set"] == "carvana" for row in rows)
    summary = {
        "out": str(out),
        "images": len(rows),
        "levels": per_level,
        "carvana": carvana,
        "relabelled": moved,
        "size": size,
        "seed": seed,
        "rust_style": rust_style,
        "seconds": round(seconds, 2),
        "images_per_second": round(len(rows) / seconds, 1) if seconds > 0 else None,
        "manifest": str(out / MANIFEST),
        "preview": str(out / PREVIEW),
    }
    if json_output:
        emit_json(summary)
    else:
        counts = ", ".join(f"{n} {name}" for name, n in per_level.items())
        note(f"wrote {len(rows)} images to {out} in {seconds:.1f} s: {counts}; {carvana} Carvana views")
        note(f"preview: {out / PREVIEW}")

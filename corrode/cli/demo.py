"""`corrode demo`: the main job end to end on the installed package alone."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from corrode.cli.app import app, make_progress, note, stdout


@app.command("demo")
def demo_command(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for everything the demo makes.")] = Path(
        "corrode-demo"
    ),
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Redo a demo already in --out.")] = False,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the data and the trainings.")] = 0,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda or mps.")] = "auto",
) -> None:
    """Make synthetic cars, train small models on them, and render rust at every level (a few minutes)."""
    import time

    from corrode.demo import DemoConfig, demo

    config = DemoConfig(out=out, overwrite=overwrite, seed=seed, device=device)
    note(
        f"corrode demo: synthetic cars -> segmenter -> masks -> GAN -> renders, in {out} "
        "(a few minutes on a laptop CPU; everything is trained on synthetic cars)"
    )
    started = time.perf_counter()
    with make_progress(transient=True) as progress:
        gan_task = None

        def stage(name: str) -> None:
            # The time since the demo began, not this stage's length (the summary line gives those).
            note(f"  {name} (starts at {time.perf_counter() - started:.0f} s)")

        def gan_progress(step: int, total: int, values: dict[str, float]) -> None:
            nonlocal gan_task
            if gan_task is None:
                gan_task = progress.add_task("train-gan", total=total)
            progress.update(gan_task, completed=step)

        result = demo(config, stage=stage, progress=progress, gan_progress=gan_progress)
    for line in result.notes:
        note(line)
    timings = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in result.seconds.items())
    note(f"stages: {timings}")
    note(f"done in {time.perf_counter() - started:.0f} s; the models were trained on synthetic cars only")
    stdout.print(f"grid:     {result.grid}")
    stdout.print(f"timeline: {result.timeline}")
    stdout.print(f"renders:  {result.out / 'render'}")
    stdout.print(f"models:   {result.gan_run} (gan), {result.seg_run} (seg)")
    stdout.print(
        f"try:      corrode render YOUR_PHOTO.jpg --level all --gan {result.gan_run} --seg {result.seg_run}"
    )

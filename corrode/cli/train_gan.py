"""`corrode train-gan`: train the multi-domain CycleGAN on level folders of masked cars."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from corrode.cli.app import app, emit_json, make_progress, note, warn


@app.command("train-gan")
def train_gan_command(
    data: Annotated[
        Path | None,
        typer.Argument(
            help="Folder with none/ mild/ moderate/ severe/ of masked cars (black background), "
            "optionally with a masks/ folder (<level>/<stem>.png) applied on the fly.",
            show_default=False,
        ),
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Run folder. [default: runs/gan]")] = None,
    resume: Annotated[
        Path | None,
        typer.Option("--resume", help="Continue this run folder exactly where its last checkpoint left it."),
    ] = None,
    config_file: Annotated[
        Path | None,
        typer.Option("--config", help="Start from a config.json (options given here override it)."),
    ] = None,
    preset: Annotated[
        str,
        typer.Option(
            "--preset",
            help="paper: the paper's setup; recommended: attention generator, identity loss on the rust "
            "removers, lambda 3, cycle noise 0.1, PatchGAN discriminator, EMA 0.999 (keeps each car's "
            "paint, grows rust mild -> severe).",
        ),
    ] = "paper",
    masks: Annotated[
        Path | None, typer.Option("--masks", help="Masks folder (<level>/<stem>.png) to apply on the fly.")
    ] = None,
    size: Annotated[
        int | None, typer.Option("--size", help="Square training size, multiple of 4. [default: 256]")
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", help="Images per level per step. [default: 1]")
    ] = None,
    epochs: Annotated[
        int | None, typer.Option("--epochs", help="Epochs (passes over the largest level). [default: 200]")
    ] = None,
    decay_epochs: Annotated[
        int | None,
        typer.Option("--decay-epochs", help="Last epochs over which the lr falls to 0. [default: 100]"),
    ] = None,
    learning_rate: Annotated[
        float | None, typer.Option("--lr", help="Adam learning rate. [default: 2e-4]")
    ] = None,
    base_channels: Annotated[
        int | None, typer.Option("--base-channels", help="Generator width (64 in the paper).")
    ] = None,
    residual_blocks: Annotated[
        int | None, typer.Option("--residual-blocks", help="Generator residual blocks (9 in the paper).")
    ] = None,
    generator: Annotated[
        str | None,
        typer.Option("--generator", help="separate (six generators, the paper) or shared (one conditional)."),
    ] = None,
    attention: Annotated[
        bool | None,
        typer.Option(
            "--attention/--no-attention", help="Generators paint a corrosion layer through a soft map."
        ),
    ] = None,
    upsample: Annotated[
        str | None,
        typer.Option(
            "--upsample",
            help="Generator upsampling: transposed (the paper) or resize (nearest + conv, no checkerboard).",
        ),
    ] = None,
    discriminator: Annotated[
        str | None, typer.Option("--discriminator", help="paper (8x8 at 256 px) or patch (70x70 PatchGAN).")
    ] = None,
    discriminator_channels: Annotated[
        int | None, typer.Option("--discriminator-channels", help="Discriminator width. [default: 64]")
    ] = None,
    gan_loss: Annotated[str | None, typer.Option("--gan-loss", help="lsgan or log (the paper's).")] = None,
    cycle_weight: Annotated[
        float | None, typer.Option("--lambda", help="Cycle-consistency weight. [default: 10]")
    ] = None,
    cycle_schedule: Annotated[
        str | None, typer.Option("--lambda-schedule", help="constant, linear or cosine (to --lambda-final).")
    ] = None,
    cycle_weight_final: Annotated[
        float | None, typer.Option("--lambda-final", help="Lambda at the end of a scheduled run.")
    ] = None,
    identity_mappings: Annotated[
        str | None,
        typer.Option(
            "--identity-mappings",
            help="both (every generator; the reference) or to-clean (only rust removers keep clean cars).",
        ),
    ] = None,
    cycle_noise: Annotated[
        float | None,
        typer.Option(
            "--cycle-noise",
            help="Noise std (of [-1, 1]) added to translations before the way back; 0 = off (paper).",
        ),
    ] = None,
    ema: Annotated[
        float | None,
        typer.Option(
            "--ema",
            help="Average the generators' weights with this decay (e.g. 0.999); render with them. 0 = off.",
        ),
    ] = None,
    identity_weight: Annotated[
        float | None, typer.Option("--identity", help="Identity loss weight, times lambda (0 = off).")
    ] = None,
    pool_size: Annotated[
        int | None, typer.Option("--pool-size", help="Past fakes per discriminator. [default: 50]")
    ] = None,
    diffaugment: Annotated[
        str | None,
        typer.Option("--diffaugment", help="Discriminator-side augmentation: e.g. color,translation,cutout."),
    ] = None,
    flip: Annotated[bool | None, typer.Option("--flip/--no-flip", help="Random horizontal flips.")] = None,
    samples: Annotated[
        int | None, typer.Option("--samples", help="Clean cars in each epoch's sample grid.")
    ] = None,
    checkpoint_every: Annotated[
        int | None,
        typer.Option("--checkpoint-every", help="Steps between checkpoints (and every epoch end)."),
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Initialisation and sampling seed.")] = None,
    device: Annotated[str | None, typer.Option("--device", help="auto, cpu, cuda or mps.")] = None,
    precision: Annotated[str | None, typer.Option("--precision", help="auto, fp32, bf16 or fp16.")] = None,
    compile_model: Annotated[
        bool | None, typer.Option("--compile/--no-compile", help="torch.compile.")
    ] = None,
    json_summary: Annotated[bool, typer.Option("--json", help="Print a JSON summary on stdout.")] = False,
) -> None:
    """Train the paper's multi-domain CycleGAN: six generators (none <-> each level), four discriminators.

    Multi-GPU: torchrun --nproc-per-node N -m corrode train-gan DATA --out runs/gan
    """
    import dataclasses
    import os

    from corrode import runs
    from corrode.config import load_config
    from corrode.errors import UsageError
    from corrode.train_gan import PRESETS, TrainGanConfig, train_gan

    given = {
        "data": data,
        "out": out,
        "masks": masks,
        "image_size": size,
        "batch_size": batch_size,
        "epochs": epochs,
        "decay_epochs": decay_epochs,
        "learning_rate": learning_rate,
        "base_channels": base_channels,
        "residual_blocks": residual_blocks,
        "generator": generator,
        "attention": attention,
        "upsample": upsample,
        "discriminator": discriminator,
        "discriminator_channels": discriminator_channels,
        "gan_loss": gan_loss,
        "cycle_weight": cycle_weight,
        "cycle_schedule": cycle_schedule,
        "cycle_weight_final": cycle_weight_final,
        "identity_weight": identity_weight,
        "identity_mappings": identity_mappings,
        "cycle_noise": cycle_noise,
        "ema": ema,
        "pool_size": pool_size,
        "diffaugment": diffaugment,
        "flip": flip,
        "samples": samples,
        "checkpoint_every": checkpoint_every,
        "seed": seed,
        "device": device,
        "precision": precision,
        "compile": compile_model,
    }
    given = {key: value for key, value in given.items() if value is not None}
    if preset not in PRESETS:
        raise UsageError(f"--preset: unknown preset {preset!r}, expected one of {', '.join(PRESETS)}")
    if resume is not None:
        if config_file is not None:
            raise UsageError("--resume takes the run's own config.json; drop --config")
        if "out" in given and given["out"] != resume:
            warn(f"--out {given['out']} ignored: a resumed run keeps writing into {resume}")
        given["out"] = resume
        config = dataclasses.replace(load_config(TrainGanConfig, resume / runs.CONFIG), **given, resume=True)
    else:
        values = dict(PRESETS[preset])
        if config_file is not None:
            values = {**values, **dataclasses.asdict(load_config(TrainGanConfig, config_file))}
        values.update(given)
        if values.get("data") is None:
            raise UsageError("missing DATA: a folder with none/ mild/ moderate/ severe/ level folders")
        config = TrainGanConfig(**values)

    with make_progress(transient=True) as progress:
        task = progress.add_task("train-gan", total=None)

        def report(step: int, total: int, losses: dict[str, float]) -> None:
            progress.update(
                task,
                completed=step,
                total=total,
                description=(
                    f"G {losses['gen_total']:.3f}  D {losses['disc_total']:.3f}  lr {losses['lr']:.2g}"
                ),
            )

        try:
            run_dir = train_gan(config, progress=report)
        except KeyboardInterrupt:
            note(f"checkpoint written; continue with: corrode train-gan --resume {config.out}")
            raise
    note(f"run written to {run_dir}")
    if json_summary and os.environ.get("RANK", "0") == "0":  # one summary under torchrun
        rows = runs.MetricsLog(run_dir / runs.METRICS).rows()
        emit_json({"run": str(run_dir), "steps": len(rows), "last": rows[-1] if rows else {}})

"""`corrode train-seg`: train the car segmenter on image + mask pairs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from corrode.cli.app import app, emit_json, make_progress, note, run_config


@app.command("train-seg")
def train_seg_command(
    data: Annotated[
        Path | None,
        typer.Argument(
            help="Folder of pairs: Carvana layout (train/ + train_masks/) or images/ + masks/.",
            show_default=False,
        ),
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Run folder. [default: runs/seg]")] = None,
    resume: Annotated[
        Path | None,
        typer.Option(
            "--resume", help="Continue this run folder after its last epoch (its config is the base)."
        ),
    ] = None,
    config_file: Annotated[
        Path | None,
        typer.Option("--config", help="Start from a config.json (options given here override it)."),
    ] = None,
    size: Annotated[
        int | None, typer.Option("--size", help="Square training size, multiple of 32. [default: 256]")
    ] = None,
    epochs: Annotated[int | None, typer.Option("--epochs", help="Total epochs. [default: 50]")] = None,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", help="Pairs per step. [default: 8]")
    ] = None,
    learning_rate: Annotated[
        float | None, typer.Option("--lr", "--learning-rate", help="Adam learning rate. [default: 0.001]")
    ] = None,
    plateau_factor: Annotated[
        float | None,
        typer.Option(
            "--plateau-factor", help="Multiply the lr by this when validation loss stalls. [default: 0.05]"
        ),
    ] = None,
    plateau_patience: Annotated[
        int | None, typer.Option("--plateau-patience", help="Epochs without improvement first. [default: 10]")
    ] = None,
    val_fraction: Annotated[
        float | None,
        typer.Option("--val-fraction", help="Share of pairs held out for validation. [default: 0.1]"),
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Split, initialisation and augmentation seed.")
    ] = None,
    width: Annotated[
        float | None, typer.Option("--width", help="MobileNetV2 width multiplier (1.0 is the paper's).")
    ] = None,
    decoder_channels: Annotated[
        str | None, typer.Option("--decoder-channels", help="Four decoder widths, e.g. 512,256,128,64.")
    ] = None,
    encoder_weights: Annotated[
        str | None,
        typer.Option(
            "--encoder-weights",
            help="auto (ImageNet from torchvision's cache if there, else random), imagenet (download if "
            "missing), none, or a .pth/.safetensors file.",
        ),
    ] = None,
    augment: Annotated[
        bool | None,
        typer.Option("--augment/--no-augment", help="Online flip/crop/affine/jitter. [default: on]"),
    ] = None,
    device: Annotated[str | None, typer.Option("--device", help="auto, cpu, cuda or mps.")] = None,
    precision: Annotated[str | None, typer.Option("--precision", help="auto, fp32, bf16 or fp16.")] = None,
    workers: Annotated[
        int | None, typer.Option("--workers", help="Data-loading processes. [default: 0]")
    ] = None,
    json_summary: Annotated[bool, typer.Option("--json", help="Print a JSON summary on stdout.")] = False,
) -> None:
    """Train the U-Net (MobileNetV2 encoder) that cuts the car out of its background.

    Multi-GPU: torchrun --nproc-per-node N -m corrode train-seg DATA --out runs/seg
    """
    import os

    from corrode import runs
    from corrode.errors import UsageError
    from corrode.train_seg import TrainSegConfig, train_seg

    given = {
        "data": data,
        "out": out,
        "size": size,
        "epochs": epochs,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "plateau_factor": plateau_factor,
        "plateau_patience": plateau_patience,
        "val_fraction": val_fraction,
        "seed": seed,
        "width": width,
        "encoder_weights": encoder_weights,
        "augment": augment,
        "device": device,
        "precision": precision,
        "workers": workers,
        "resume": resume,
    }
    if decoder_channels is not None:
        try:
            given["decoder_channels"] = tuple(int(part) for part in decoder_channels.split(","))
        except ValueError as exc:
            raise UsageError(
                f"--decoder-channels: expected four integers like 512,256,128,64, got {decoder_channels!r}"
            ) from exc
    config = run_config(TrainSegConfig, resume=resume, config_file=config_file, given=given)
    if config.data is None:
        raise UsageError("missing DATA: a Carvana-layout or images/ + masks/ folder")

    with make_progress(transient=True) as progress:
        run_dir = train_seg(config, progress=progress, log=note)
    if json_summary and os.environ.get("RANK", "0") == "0":  # one summary under torchrun
        rows = runs.MetricsLog(run_dir / runs.METRICS).rows()
        best = max(rows, key=lambda row: float(row.get("val_dice") or row.get("train_dice") or 0), default={})
        emit_json({"run": str(run_dir), "epochs": len(rows), "best": best, "last": rows[-1] if rows else {}})

"""`corrode train-classifier` and `corrode classify`: learn the four corrosion levels, then tell them."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from corrode.cli.app import EXIT_FAILED, app, emit_json, fail_line, make_progress, note, run_config


@app.command("train-classifier")
def train_classifier_command(
    data: Annotated[
        Path | None,
        typer.Argument(
            help="Level folders none/ mild/ moderate/ severe/ (masks in DATA_masks/), or a synth folder.",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Run folder. [default: runs/classifier]")
    ] = None,
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
    masks: Annotated[
        Path | None,
        typer.Option("--masks", help="Masks root <level>/<stem>.png. [default: DATA_masks if there]"),
    ] = None,
    size: Annotated[
        int | None, typer.Option("--size", help="Square input size, multiple of 32. [default: 128]")
    ] = None,
    width: Annotated[
        float | None, typer.Option("--width", help="MobileNetV2 width multiplier. [default: 1.0]")
    ] = None,
    epochs: Annotated[int | None, typer.Option("--epochs", help="Total epochs. [default: 18]")] = None,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", help="Images per step. [default: 16]")
    ] = None,
    learning_rate: Annotated[
        float | None,
        typer.Option("--lr", "--learning-rate", help="AdamW peak learning rate. [default: 0.005]"),
    ] = None,
    label_smoothing: Annotated[
        float | None,
        typer.Option("--label-smoothing", help="Label smoothing of the targets. [default: 0.0]"),
    ] = None,
    balance: Annotated[
        str | None,
        typer.Option(
            "--balance", help="sampler (levels drawn equally often), weights (loss weights) or none."
        ),
    ] = None,
    val_fraction: Annotated[
        float | None, typer.Option("--val-fraction", help="Share of each level held out. [default: 0.2]")
    ] = None,
    encoder_weights: Annotated[
        str | None,
        typer.Option(
            "--encoder-weights",
            help="auto (ImageNet from torchvision's cache if there, else random), imagenet, none, or a file.",
        ),
    ] = None,
    augment: Annotated[
        bool | None, typer.Option("--augment/--no-augment", help="Random mirror, shift and zoom.")
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Split, initialisation and sampling seed.")
    ] = None,
    device: Annotated[str | None, typer.Option("--device", help="auto, cpu, cuda or mps.")] = None,
    precision: Annotated[str | None, typer.Option("--precision", help="auto, fp32, bf16 or fp16.")] = None,
    json_summary: Annotated[bool, typer.Option("--json", help="Print a JSON summary on stdout.")] = False,
) -> None:
    """Train the MobileNetV2 level classifier (softmax head) on masked images in level folders.

    Multi-GPU: torchrun --nproc-per-node N -m corrode train-classifier DATA --out runs/classifier
    """
    import os

    from corrode import runs
    from corrode.errors import UsageError
    from corrode.train_classifier import TrainClassifierConfig, train_classifier

    given = {
        "data": data,
        "out": out,
        "masks": masks,
        "size": size,
        "width": width,
        "epochs": epochs,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "label_smoothing": label_smoothing,
        "balance": balance,
        "val_fraction": val_fraction,
        "encoder_weights": encoder_weights,
        "augment": augment,
        "seed": seed,
        "device": device,
        "precision": precision,
        "resume": resume,
    }
    config = run_config(TrainClassifierConfig, resume=resume, config_file=config_file, given=given)
    if config.data is None:
        raise UsageError("missing DATA: level folders none/ mild/ moderate/ severe/")

    with make_progress(transient=True) as progress:
        run_dir = train_classifier(config, progress=progress, log=note)
    if json_summary and os.environ.get("RANK", "0") == "0":
        rows = runs.MetricsLog(run_dir / runs.METRICS).rows()
        best = max(rows, key=lambda row: float(row.get("macro_f1") or 0), default={})
        emit_json({"run": str(run_dir), "epochs": len(rows), "best": best, "last": rows[-1] if rows else {}})


@app.command("classify")
def classify_command(
    inputs: Annotated[
        list[str],
        typer.Argument(
            help="Photos, folders, glob patterns, or '-' to read paths from stdin.", show_default=False
        ),
    ],
    model: Annotated[
        str | None,
        typer.Option(
            "--model", "-m", help="Classifier run folder or .safetensors (default $CORRODE_HOME/classifier)."
        ),
    ] = None,
    seg: Annotated[
        str | None,
        typer.Option(
            "--seg", help="Segmenter run folder or 'demo': cut the car out first (else: already masked)."
        ),
    ] = None,
    recursive: Annotated[bool, typer.Option("--recursive", "-r", help="Look inside sub-folders.")] = False,
    json_lines: Annotated[bool, typer.Option("--json", help="One JSON object per photo on stdout.")] = False,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Photos per model call.")] = 16,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda or mps.")] = "auto",
) -> None:
    """Tell each photo's corrosion level: one line per photo, `path<TAB>level<TAB>none=.. mild=.. ...`.

    Exit code 1 when any photo failed (each gets one error line); the others are still classified.
    """
    from corrode.classify import ClassifyConfig, Prediction, classify

    cfg = ClassifyConfig(
        inputs=tuple(inputs), model=model, seg=seg, recursive=recursive, batch_size=batch_size, device=device
    )
    failed = 0

    def show(prediction: Prediction) -> None:
        nonlocal failed
        if prediction.failed:
            failed += 1
            fail_line(f"{prediction.input}: {prediction.error}")
        if json_lines:
            emit_json(prediction.as_dict())
        elif not prediction.failed:
            # Plain write: Rich would turn the tabs into spaces.
            sys.stdout.write(prediction.line() + "\n")
            sys.stdout.flush()

    results = classify(cfg, stdin=sys.stdin, on_result=show)
    note(f"{len(results)} photo(s): {len(results) - failed} classified, {failed} failed")
    if failed:
        raise typer.Exit(EXIT_FAILED)

"""`corrode train-classifier` and `corrode classify`: learn the four corrosion levels, then tell them."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from corrode.cli.app import EXIT_FAILED, app, emit_json, fail_line, note
from corrode.cli.training import Option, Trainer, register

# Kept equal to corrode.train_classifier.BALANCES by a test.
BALANCES = ("sampler", "weights", "none")


def _train_summary(run_dir: Path) -> dict:
    from corrode import runs

    rows = runs.MetricsLog(run_dir / runs.METRICS).rows()
    best = max(rows, key=lambda row: float(row.get("macro_f1") or 0), default={})
    return {"epochs": len(rows), "best": best, "last": rows[-1] if rows else {}}


register(
    Trainer(
        name="train-classifier",
        config="corrode.train_classifier:TrainClassifierConfig",
        train="corrode.train_classifier:train_classifier",
        data_help="Level folders none/ mild/ moderate/ severe/ (masks in DATA_masks/), or a synth folder.",
        doc="""Train the MobileNetV2 level classifier (softmax head) on masked images in level folders.

        Multi-GPU: torchrun --nproc-per-node N -m corrode train-classifier DATA --out runs/classifier
        """,
        options={
            "masks": Option(("--masks",), "Masks root <level>/<stem>.png.", shown="DATA_masks if there"),
            "size": Option(("--size",), "Square input size, multiple of 32."),
            "width": Option(("--width",), "MobileNetV2 width multiplier."),
            "epochs": Option(("--epochs",), "Total epochs."),
            "batch_size": Option(("--batch-size",), "Images per step."),
            "learning_rate": Option(("--lr", "--learning-rate"), "AdamW peak learning rate."),
            "label_smoothing": Option(("--label-smoothing",), "Label smoothing of the targets."),
            "ema_decay": Option(
                ("--ema-decay",), "Validate and save a moving average of the weights (decay per step; 0 off)."
            ),
            "balance": Option(
                ("--balance",),
                "sampler (levels drawn equally often), weights (loss weights) or none.",
                BALANCES,
            ),
            "val_fraction": Option(("--val-fraction",), "Share of each level held out."),
            "encoder_weights": Option(
                ("--encoder-weights",),
                "auto (ImageNet from torchvision's cache if there, else random), imagenet, none, or a file.",
            ),
            "augment": Option(("--augment/--no-augment",), "Random mirror, shift and zoom."),
            "mirror": Option(
                ("--mirror/--no-mirror",),
                "Read each car and its mirror image and average the two (validation and inference).",
            ),
        },
        summary=_train_summary,
    )
)


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

"""`corrode train-seg`: train the car segmenter on image + mask pairs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from corrode.cli.training import Option, Trainer, decoder_widths, register


def _summary(run_dir: Path) -> dict[str, Any]:
    from corrode import runs

    rows = runs.MetricsLog(run_dir / runs.METRICS).rows()
    best = max(rows, key=lambda row: float(row.get("val_dice") or row.get("train_dice") or 0), default={})
    return {"epochs": len(rows), "best": best, "last": rows[-1] if rows else {}}


register(
    Trainer(
        name="train-seg",
        config="corrode.train_seg:TrainSegConfig",
        train="corrode.train_seg:train_seg",
        data_help="Folder of pairs: Carvana layout (train/ + train_masks/) or images/ + masks/.",
        doc="""Train the U-Net (MobileNetV2 encoder) that cuts the car out of its background.

        Multi-GPU: torchrun --nproc-per-node N -m corrode train-seg DATA --out runs/seg
        """,
        options={
            "size": Option(("--size",), "Square training size, multiple of 32."),
            "epochs": Option(("--epochs",), "Total epochs."),
            "batch_size": Option(("--batch-size",), "Pairs per step."),
            "learning_rate": Option(("--lr", "--learning-rate"), "Adam learning rate."),
            "plateau_factor": Option(
                ("--plateau-factor",), "Multiply the lr by this when validation loss stalls."
            ),
            "plateau_patience": Option(("--plateau-patience",), "Epochs without improvement first."),
            "val_fraction": Option(("--val-fraction",), "Share of pairs held out for validation."),
            "width": Option(("--width",), "MobileNetV2 width multiplier (1.0 is the paper's)."),
            "decoder_channels": Option(
                ("--decoder-channels",), "Four decoder widths, e.g. 512,256,128,64.", parse=decoder_widths
            ),
            "encoder_weights": Option(
                ("--encoder-weights",),
                "auto (ImageNet from torchvision's cache if there, else random), imagenet (download if "
                "missing), none, or a .pth/.safetensors file.",
            ),
            "augment": Option(("--augment/--no-augment",), "Online flip/crop/affine/jitter."),
            "workers": Option(("--workers",), "Data-loading processes."),
        },
        summary=_summary,
    )
)

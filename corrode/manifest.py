"""The `manifest.csv` that `corrode synth` writes beside its data set: one row per image, with its
true level and rust fraction. `synth` writes it; `evaluate` reads it for the true coverage bands."""

from __future__ import annotations

import csv
from pathlib import Path

MANIFEST = "manifest.csv"
MANIFEST_COLUMNS = (
    "file",
    "mask",
    "set",
    "true_level",
    "label",
    "rust_fraction",
    "car_id",
    "body",
    "colour",
    "view",
    "background",
)


def read_manifest(path: str | Path) -> list[dict[str, str]]:
    """The rows of a synth `manifest.csv` as dicts keyed by MANIFEST_COLUMNS."""
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))

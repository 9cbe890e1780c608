"""The order images are shown in: what this annotator has not labelled first, then skipped, then labelled.

Within each group:
- `name`: by file path;
- `random`: shuffled with a seed taken from the annotator's name, so a reload shows the same order
  and two annotators see different ones;
- `uncertain`: most uncertain first, where uncertainty is the spread of the votes already given
  (standard deviation of the level indices) plus, when a classifier's scores are given, one minus
  the margin between its two most likely levels.
"""

from __future__ import annotations

import csv
import hashlib
import random
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path

from corrode import levels
from corrode.errors import FileError, UsageError
from corrode.label.db import REJECT, SKIP, Image

ORDERS = ("random", "name", "uncertain")


def read_scores(path: str | Path) -> dict[Path, list[float]]:
    """A classifier's scores: CSV with a `path` column and one column per level name."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = [n for n in ("path", *levels.NAMES) if n not in (reader.fieldnames or [])]
            if missing:
                raise FileError(path, f"missing column(s) {', '.join(missing)}")
            scores = {}
            for line, row in enumerate(reader, start=2):
                try:
                    values = [float(row[name]) for name in levels.NAMES]
                except ValueError as exc:
                    raise FileError(path, f"line {line}: {exc}") from exc
                scores[Path(row["path"]).resolve()] = values
    except OSError as exc:
        raise FileError(path, f"cannot read ({exc.strerror or exc})") from exc
    return scores


def _vote_spread(votes: Mapping[str, str]) -> float:
    indices = [levels.get(v).index for v in votes.values() if v not in (REJECT, SKIP)]
    return statistics.pstdev(indices) if len(indices) >= 2 else 0.0


def _classifier_doubt(values: Sequence[float] | None) -> float:
    if not values:
        return 0.0
    total = sum(values)
    if total <= 0:
        return 0.0
    top = sorted((v / total for v in values), reverse=True)
    return 1.0 - (top[0] - top[1])


def order_images(
    images: Sequence[Image],
    own_labels: Mapping[int, str],
    *,
    order: str = "random",
    annotator: str = "",
    votes: Mapping[int, Mapping[str, str]] | None = None,
    scores: Mapping[Path, Sequence[float]] | None = None,
) -> list[Image]:
    if order not in ORDERS:
        raise UsageError(f"unknown order {order!r}: expected one of {', '.join(ORDERS)}")
    ranked = sorted(images, key=lambda image: str(image.path))
    if order == "random":
        seed = int.from_bytes(hashlib.sha256(annotator.encode("utf-8")).digest()[:8], "big")
        random.Random(seed).shuffle(ranked)
    elif order == "uncertain":
        votes = votes or {}
        scores = scores or {}

        def doubt(image: Image) -> float:
            return _vote_spread(votes.get(image.id, {})) + _classifier_doubt(scores.get(image.path))

        ranked.sort(key=doubt, reverse=True)  # stable: ties stay in name order

    def group(image: Image) -> int:
        label = own_labels.get(image.id)
        return 0 if label is None else 1 if label == SKIP else 2

    return sorted(ranked, key=group)

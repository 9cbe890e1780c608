"""Label counts and agreement between annotators for ordinal levels.

- quadratic-weighted Cohen's kappa for each pair of annotators, on the images both labelled;
- Fleiss' kappa (nominal; the form for a varying number of raters per image), on images with 2+ votes;
- Krippendorff's alpha with the ordinal metric, on every image with 2+ votes (missing votes allowed).

Rejects and skips are not levels: they are counted but left out of agreement.
Cohen's kappa comes from scikit-learn and Krippendorff's alpha from the `krippendorff` package.
Fleiss' kappa is written out here: statsmodels' version needs the same number of raters on every
image, which several annotators labelling at their own pace never give. The tests check all three
against hand-computed values.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from corrode import levels
from corrode.label.db import REJECT, SKIP, LabelDB

CATEGORIES = len(levels.LEVELS)


def _defined(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def cohen_kappa_quadratic(first: Sequence[int], second: Sequence[int], categories: int = CATEGORIES) -> float:
    """Quadratic-weighted Cohen's kappa of two raters' level indices on the same items (nan if undefined)."""
    from sklearn.metrics import cohen_kappa_score

    a = np.asarray(first, dtype=np.int64)
    b = np.asarray(second, dtype=np.int64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError("two sequences of the same length expected")
    if a.size == 0:
        return math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # undefined (0/0) when both raters used one level only: nan
        value = cohen_kappa_score(a, b, labels=list(range(categories)), weights="quadratic")
    return float(value)


def count_matrix(units: Sequence[Sequence[int]], categories: int = CATEGORIES) -> np.ndarray:
    """`(units, categories)`: how many votes each unit got for each category."""
    counts = np.zeros((len(units), categories))
    for row, votes in enumerate(units):
        for vote in votes:
            counts[row, vote] += 1
    return counts


def fleiss_kappa(units: Sequence[Sequence[int]], categories: int = CATEGORIES) -> float:
    """Fleiss' kappa over units with two or more votes each (nan if undefined)."""
    counts = count_matrix([u for u in units if len(u) >= 2], categories)
    if counts.shape[0] == 0:
        return math.nan
    raters = counts.sum(axis=1)
    agreement = ((counts**2).sum(axis=1) - raters) / (raters * (raters - 1))
    proportions = counts.sum(axis=0) / raters.sum()
    chance = float((proportions**2).sum())
    if chance == 1.0:
        return math.nan
    return (float(agreement.mean()) - chance) / (1.0 - chance)


def krippendorff_alpha_ordinal(units: Sequence[Sequence[int]], categories: int = CATEGORIES) -> float:
    """Krippendorff's alpha, ordinal metric, from each unit's votes (units with < 2 votes add nothing)."""
    import krippendorff

    counts = count_matrix([u for u in units if len(u) >= 2], categories)
    if counts.shape[0] == 0 or np.count_nonzero(counts.sum(axis=0)) < 2:
        return math.nan  # no pairs of votes, or every vote the same level: no expected disagreement
    return float(
        krippendorff.alpha(
            value_counts=counts, level_of_measurement="ordinal", value_domain=list(range(categories))
        )
    )


@dataclass(frozen=True)
class PairAgreement:
    first: str
    second: str
    images: int
    kappa: float | None


def summarize(db: LabelDB) -> dict:
    """Everything `corrode label stats` reports, as plain data (JSON-ready)."""
    images = db.images()
    rows = db.all_labels()
    per_annotator: dict[str, dict] = {}
    level_totals = dict.fromkeys(levels.NAMES, 0)
    rejected: set[int] = set()
    for image_id, annotator, label, _ in rows:
        entry = per_annotator.setdefault(
            annotator, {"labels": 0, "levels": dict.fromkeys(levels.NAMES, 0), "rejected": 0, "skipped": 0}
        )
        if label == SKIP:
            entry["skipped"] += 1
        elif label == REJECT:
            entry["rejected"] += 1
            entry["labels"] += 1
            rejected.add(image_id)
        else:
            entry["labels"] += 1
            entry["levels"][label] += 1
            level_totals[label] += 1
    level_votes: dict[int, dict[str, int]] = {}
    for image_id, per_image in db.votes().items():
        for annotator, label in per_image.items():
            if label != REJECT:
                level_votes.setdefault(image_id, {})[annotator] = levels.get(label).index

    pairs = []
    for first, second in itertools.combinations(sorted(per_annotator), 2):
        shared = [v for v in level_votes.values() if first in v and second in v]
        kappa = cohen_kappa_quadratic([v[first] for v in shared], [v[second] for v in shared])
        pairs.append(PairAgreement(first, second, len(shared), _defined(kappa)))
    units = [list(v.values()) for v in level_votes.values()]
    multi = [u for u in units if len(u) >= 2]
    return {
        "database": str(db.path),
        "images": len(images),
        "bad_images": sum(1 for image in images if image.bad),
        "labelled_images": len(level_votes) + len(rejected - set(level_votes)),
        "annotators": per_annotator,
        "levels": level_totals,
        "rejected_images": len(rejected),
        "agreement": {
            "images_with_several_votes": len(multi),
            "cohen_kappa_quadratic": [pair.__dict__ for pair in pairs],
            "fleiss_kappa": _defined(fleiss_kappa(multi)),
            "krippendorff_alpha_ordinal": _defined(krippendorff_alpha_ordinal(multi)),
        },
    }


def stats(db_path: str | Path) -> dict:
    with LabelDB(db_path, create=False) as db:
        return summarize(db)

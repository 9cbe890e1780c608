"""Agreement statistics against values computed by hand (worked in the comments), and label counts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from corrode.label.db import REJECT, SKIP, LabelDB
from corrode.label.stats import (
    cohen_kappa_quadratic,
    fleiss_kappa,
    krippendorff_alpha_ordinal,
    stats,
)


def test_cohen_quadratic_by_hand():
    # A = 0 0 1 2, B = 0 1 1 3. Weights (i-j)^2/9.
    # Observed: cells (0,0) (0,1) (1,1) (2,3) -> sum W*O = 1/9 + 1/9 = 2/9. Marginals A = (2,1,1,0),
    # B = (1,2,0,1);
    # sum W*E = (1/4)(1/9) * sum r_i c_j (i-j)^2 = (1/36)(22 + 5 + 7) = 34/36.
    # kappa = 1 - (2/9) / (34/36) = 1 - 4/17 = 13/17.
    assert cohen_kappa_quadratic([0, 0, 1, 2], [0, 1, 1, 3]) == pytest.approx(13 / 17)


def test_cohen_perfect_opposite_and_undefined():
    assert cohen_kappa_quadratic([0, 1, 2, 3], [0, 1, 2, 3]) == pytest.approx(1.0)
    # Exactly reversed on a symmetric spread: quadratic kappa is -1.
    assert cohen_kappa_quadratic([0, 3], [3, 0]) == pytest.approx(-1.0)
    # Both raters always "mild": no expected disagreement, kappa undefined.
    assert math.isnan(cohen_kappa_quadratic([1, 1, 1], [1, 1, 1]))
    assert math.isnan(cohen_kappa_quadratic([], []))


def test_fleiss_by_hand():
    # Units (votes): [0,0,0], [1,1,2], [2,3,3]; 3 raters each.
    # P_i = (sum n_ij^2 - 3) / 6 = 1, 1/3, 1/3 -> mean 5/9.
    # p_j = (3,2,2,2)/9 -> chance = 21/81 = 7/27.  kappa = (5/9 - 7/27) / (1 - 7/27) = 8/20.
    assert fleiss_kappa([[0, 0, 0], [1, 1, 2], [2, 3, 3]]) == pytest.approx(0.4)


def test_krippendorff_ordinal_by_hand():
    # Same units. Coincidences (pairs / (m-1)): o00=3, o11=1, o12=o21=1, o23=o32=1, o33=1;
    # marginals n = (3,2,2,2), n.. = 9. Ordinal delta^2: d(1,2)=d(2,3)=(2+2-2)^2=4, d(0,1)=2.5^2,
    # d(0,2)=4.5^2, d(0,3)=6.5^2, d(1,3)=4^2.
    # Observed sum o*d = 4*4 = 16; expected sum n_c n_k d = 2*(37.5+121.5+253.5+16+64+16) = 1017.
    # alpha = 1 - (9-1) * 16 / 1017 = 889/1017.
    assert krippendorff_alpha_ordinal([[0, 0, 0], [1, 1, 2], [2, 3, 3]]) == pytest.approx(889 / 1017)


def test_krippendorff_ignores_single_votes_and_perfect_is_one():
    units = [[0, 0], [1, 1], [3, 3, 3], [2]]
    assert krippendorff_alpha_ordinal(units) == pytest.approx(1.0)
    assert math.isnan(krippendorff_alpha_ordinal([[2, 2], [2, 2]]))


def test_against_scikit_learn_when_installed():
    metrics = pytest.importorskip("sklearn.metrics", reason="scikit-learn not installed (cross-check only)")
    rng = np.random.default_rng(0)
    a = rng.integers(0, 4, 200)
    b = np.clip(a + rng.integers(-1, 2, 200), 0, 3)
    expected = metrics.cohen_kappa_score(a, b, weights="quadratic", labels=[0, 1, 2, 3])
    assert cohen_kappa_quadratic(a, b) == pytest.approx(expected)


def test_against_krippendorff_package_when_installed():
    krippendorff = pytest.importorskip("krippendorff", reason="krippendorff not installed (cross-check only)")
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 4, 60)
    table = np.clip(truth[None, :] + rng.integers(-1, 2, (4, 60)), 0, 3).astype(float)
    table[rng.random(table.shape) < 0.3] = np.nan  # missing votes
    units = [[int(v) for v in column if not np.isnan(v)] for column in table.T]
    expected = krippendorff.alpha(
        reliability_data=table, level_of_measurement="ordinal", value_domain=[0, 1, 2, 3]
    )
    assert krippendorff_alpha_ordinal(units) == pytest.approx(expected)


def test_summary_on_known_labels(tmp_path):
    path = tmp_path / "labels.sqlite"
    with LabelDB(path) as db:
        ids = db.add_images([(tmp_path / f"{i}.png", (8, 8), None) for i in range(6)])
        db.add_images([(tmp_path / "broken.png", None, "not an image")])
        a, b = [0, 0, 1, 2], [0, 1, 1, 3]
        names = ("none", "mild", "moderate", "severe")
        for image_id, x, y in zip(ids, a, b, strict=False):
            db.set_label(image_id, "ann", names[x])
            db.set_label(image_id, "bob", names[y])
        db.set_label(ids[4], "ann", REJECT)
        db.set_label(ids[4], "bob", "severe")
        db.set_label(ids[5], "ann", SKIP)
    summary = stats(path)
    assert summary["images"] == 7 and summary["bad_images"] == 1
    assert summary["labelled_images"] == 5
    assert summary["rejected_images"] == 1
    assert summary["annotators"]["ann"] == {
        "labels": 5,
        "levels": {"none": 2, "mild": 1, "moderate": 1, "severe": 0},
        "rejected": 1,
        "skipped": 1,
    }
    assert summary["levels"] == {"none": 3, "mild": 3, "moderate": 1, "severe": 2}
    [pair] = summary["agreement"]["cohen_kappa_quadratic"]
    # The reject is not a level: the pair is compared on the 4 images both gave a level.
    assert (pair["first"], pair["second"], pair["images"]) == ("ann", "bob", 4)
    assert pair["kappa"] == pytest.approx(13 / 17)
    assert summary["agreement"]["images_with_several_votes"] == 4
    # Units [0,0] [0,1] [1,1] [2,3]: P_i = 1,0,1,0 -> 1/2; p = (3,3,1,1)/8 -> chance 20/64;
    # kappa = (1/2 - 20/64) / (1 - 20/64) = 3/11.
    assert summary["agreement"]["fleiss_kappa"] == pytest.approx(3 / 11)

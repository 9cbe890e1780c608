"""Order of images: unlabelled first, then skipped, then labelled; random / name / uncertain."""

from __future__ import annotations

from pathlib import Path

import pytest

from corrode.errors import FileError, UsageError
from corrode.label.db import SKIP, Image
from corrode.label.order import order_images, read_scores


def _images(count):
    return [Image(i, Path(f"/photos/{i:02d}.jpg"), f"{i:02d}.jpg", 8, 8, None) for i in range(count)]


def test_name_order_unlabelled_then_skipped_then_labelled():
    images = _images(6)
    own = {0: "mild", 2: SKIP, 4: "none"}
    assert [i.id for i in order_images(images, own, order="name")] == [1, 3, 5, 2, 0, 4]


def test_random_order_is_stable_per_annotator_and_differs_between_them():
    images = _images(30)
    first = [i.id for i in order_images(images, {}, order="random", annotator="alice")]
    again = [i.id for i in order_images(list(reversed(images)), {}, order="random", annotator="alice")]
    other = [i.id for i in order_images(images, {}, order="random", annotator="bob")]
    assert first == again and first != other and sorted(first) == list(range(30))


def test_uncertain_disputed_and_classifier_doubt_first():
    images = _images(4)
    votes = {
        1: {"a": "none", "b": "severe"},
        2: {"a": "mild", "b": "moderate"},
        3: {"a": "mild", "b": "mild"},
    }
    scores = {Path("/photos/03.jpg"): [0.05, 0.45, 0.45, 0.05]}  # classifier torn on image 3
    ordered = [i.id for i in order_images(images, {}, order="uncertain", votes=votes, scores=scores)]
    # spreads: 1 -> 1.5, 2 -> 0.5, 3 -> 0 + doubt 1.0; 0 -> nothing known.
    assert ordered == [1, 3, 2, 0]


def test_read_scores(tmp_path):
    path = tmp_path / "scores.csv"
    path.write_text("path,none,mild,moderate,severe\n/photos/01.jpg,0.1,0.2,0.3,0.4\n")
    assert read_scores(path) == {Path("/photos/01.jpg"): [0.1, 0.2, 0.3, 0.4]}
    path.write_text("path,none\n/photos/01.jpg,1\n")
    with pytest.raises(FileError, match="missing column"):
        read_scores(path)
    path.write_text("path,none,mild,moderate,severe\n/photos/01.jpg,a,b,c,d\n")
    with pytest.raises(FileError, match="line 2"):
        read_scores(path)


def test_unknown_order():
    with pytest.raises(UsageError):
        order_images(_images(2), {}, order="best")

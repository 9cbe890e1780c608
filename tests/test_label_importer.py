"""Existing level folders -> the label database as one annotator."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from corrode.errors import UsageError
from corrode.label.db import LabelDB
from corrode.label.importer import import_levels


def test_import_level_folders(tmp_path):
    root = tmp_path / "data"
    for n, level in enumerate(("none", "mild", "severe")):
        (root / level).mkdir(parents=True)
        for i in range(n + 1):
            pixels = np.full((16, 16, 3), 40 * (n + i), dtype=np.uint8)
            Image.fromarray(pixels).save(root / level / f"{level}_{i}.png")
    (root / "mild" / "broken.png").write_bytes(b"\x89PNG not really")
    (root / "notes").mkdir()
    (root / "notes" / "x.png").write_bytes(b"ignored: not a level folder")
    result = import_levels(tmp_path / "labels.sqlite", root, "synth")
    assert result.imported == {"none": 1, "mild": 2, "moderate": 0, "severe": 3}
    assert len(result.failed) == 1 and "broken.png" in result.failed[0]
    with LabelDB(tmp_path / "labels.sqlite") as db:
        labels = db.labels_of("synth")
        by_name = {db.image(i).name: label for i, label in labels.items()}
    assert by_name["severe_2.png"] == "severe" and by_name["none_0.png"] == "none"
    assert len(by_name) == 6
    # Importing again changes nothing but the time.
    import_levels(tmp_path / "labels.sqlite", root, "synth")
    with LabelDB(tmp_path / "labels.sqlite") as db:
        assert db.labels_of("synth") == labels


def test_import_needs_level_folders(tmp_path):
    with pytest.raises(UsageError, match="no level folders"):
        import_levels(tmp_path / "labels.sqlite", tmp_path, "x")
    with pytest.raises(UsageError, match="no such folder"):
        import_levels(tmp_path / "labels.sqlite", tmp_path / "missing", "x")

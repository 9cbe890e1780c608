"""corrode.leveldata: one rule for where a level data set and its masks are."""

from __future__ import annotations

from pathlib import Path

import pytest

from corrode.errors import UsageError
from corrode.leveldata import resolve_level_data


def make_levels(root: Path) -> Path:
    for name in ("none", "mild", "moderate", "severe"):
        (root / name).mkdir(parents=True)
    return root


def test_plain_level_folders_have_no_masks(tmp_path: Path) -> None:
    data = make_levels(tmp_path / "data")
    found = resolve_level_data(data)
    assert found.root == data and found.masks_root is None


def test_masks_inside_the_data_folder(tmp_path: Path) -> None:
    data = make_levels(tmp_path / "data")
    (data / "masks").mkdir()
    assert resolve_level_data(data).masks_root == data / "masks"


def test_masks_beside_the_data_folder(tmp_path: Path) -> None:
    data = make_levels(tmp_path / "data")
    (tmp_path / "data_masks").mkdir()
    assert resolve_level_data(data).masks_root == tmp_path / "data_masks"


def test_synth_output_resolves_to_its_levels_and_their_masks(tmp_path: Path) -> None:
    make_levels(tmp_path / "synth" / "levels")
    (tmp_path / "synth" / "levels_masks").mkdir()
    found = resolve_level_data(tmp_path / "synth")
    assert found.root == tmp_path / "synth" / "levels"
    assert found.masks_root == tmp_path / "synth" / "levels_masks"


def test_given_masks_win_and_must_exist(tmp_path: Path) -> None:
    data = make_levels(tmp_path / "data")
    (data / "masks").mkdir()
    other = tmp_path / "other"
    other.mkdir()
    assert resolve_level_data(data, other).masks_root == other
    with pytest.raises(UsageError, match="no such folder"):
        resolve_level_data(data, tmp_path / "missing")

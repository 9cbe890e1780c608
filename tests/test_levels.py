"""corrode.levels: the one definition of the four levels."""

import pytest

from corrode import levels
from corrode.errors import UsageError


def test_order_letters_and_indices() -> None:
    assert levels.NAMES == ("none", "mild", "moderate", "severe")
    assert [level.letter for level in levels.LEVELS] == ["A", "B", "C", "D"]
    assert [level.index for level in levels.LEVELS] == [0, 1, 2, 3]
    assert levels.CLEAN.name == "none" and levels.RUSTY_NAMES == ("mild", "moderate", "severe")


@pytest.mark.parametrize("key", ["severe", "SEVERE", "d", "D", 3, "3", " severe "])
def test_get_by_name_letter_or_index(key) -> None:
    assert levels.get(key).name == "severe"


def test_unknown_level_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="expected one of none, mild, moderate, severe"):
        levels.get("rusty")
    with pytest.raises(UsageError):
        levels.by_index(4)

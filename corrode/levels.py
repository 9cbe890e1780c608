"""The four corrosion levels: the only place their names are spelled.

Domains follow the paper: A none, B mild, C moderate, D severe.
"""

from __future__ import annotations

from dataclasses import dataclass

from corrode.errors import UsageError


@dataclass(frozen=True)
class Level:
    name: str
    letter: str
    index: int

    def __str__(self) -> str:
        return self.name


LEVELS: tuple[Level, ...] = (
    Level("none", "A", 0),
    Level("mild", "B", 1),
    Level("moderate", "C", 2),
    Level("severe", "D", 3),
)
NAMES: tuple[str, ...] = tuple(level.name for level in LEVELS)
CLEAN: Level = LEVELS[0]
RUSTY: tuple[Level, ...] = LEVELS[1:]
RUSTY_NAMES: tuple[str, ...] = tuple(level.name for level in RUSTY)

_BY_KEY: dict[str, Level] = {}
for _level in LEVELS:
    _BY_KEY[_level.name] = _level
    _BY_KEY[_level.letter.lower()] = _level
    _BY_KEY[str(_level.index)] = _level


def get(key: str | int | Level) -> Level:
    """A level from its name, domain letter or index ("severe", "D", 3)."""
    if isinstance(key, Level):
        return key
    level = _BY_KEY.get(str(key).strip().lower())
    if level is None:
        raise UsageError(f"unknown level {key!r}: expected one of {', '.join(NAMES)}")
    return level


def by_index(index: int) -> Level:
    if not 0 <= index < len(LEVELS):
        raise UsageError(f"level index {index} out of range 0..{len(LEVELS) - 1}")
    return LEVELS[index]

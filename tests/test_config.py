"""corrode.config: dataclass configs to JSON and back."""

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from corrode.config import from_dict, load_config, require, save_config, to_dict
from corrode.errors import ConfigError


@dataclass(frozen=True)
class Example:
    data: Path
    size: int = 256
    levels: tuple[str, ...] = ("mild", "severe")
    weights: Path | None = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        require(self.size % 4 == 0, f"size must be divisible by 4, got {self.size}")


def test_round_trip(tmp_path: Path) -> None:
    config = Example(data=tmp_path / "d", weights=tmp_path / "w.safetensors", extra={"a": 1})
    path = save_config(config, tmp_path / "config.json")
    assert load_config(Example, path) == config
    assert to_dict(config)["data"] == str(tmp_path / "d")


def test_validation_and_unknown_keys(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="divisible by 4"):
        Example(data=Path("x"), size=30)
    with pytest.raises(ConfigError, match="unknown option"):
        from_dict(Example, {"data": "x", "colour": "blue"})
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not a readable JSON config"):
        load_config(Example, tmp_path / "bad.json")
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(Example, tmp_path / "none.json")

"""corrode.locate: explicit path, run folder, demo, CORRODE_HOME, and the message when none."""

from pathlib import Path

import pytest

from corrode import locate
from corrode.locate import ModelNotFoundError


def test_run_folder_prefers_best(tmp_path: Path) -> None:
    (tmp_path / "model.safetensors").write_bytes(b"x")
    assert locate.find_model(tmp_path, "seg") == tmp_path / "model.safetensors"
    (tmp_path / "best.safetensors").write_bytes(b"x")
    assert locate.find_model(tmp_path, "seg") == tmp_path / "best.safetensors"
    assert locate.find_model(tmp_path, "seg", prefer_best=False) == tmp_path / "model.safetensors"


def test_home_fallback_and_helpful_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORRODE_HOME", str(tmp_path))
    with pytest.raises(ModelNotFoundError, match="corrode demo"):
        locate.find_model(None, "gan")
    (tmp_path / "gan").mkdir()
    (tmp_path / "gan" / "model.safetensors").write_bytes(b"x")
    assert locate.find_model(None, "gan") == tmp_path / "gan" / "model.safetensors"


def test_missing_path_and_empty_run(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="no such gan model"):
        locate.find_model(tmp_path / "nope", "gan")
    with pytest.raises(ModelNotFoundError, match="holds no model.safetensors"):
        locate.find_model(tmp_path, "gan")

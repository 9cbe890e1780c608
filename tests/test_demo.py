"""corrode.demo / `corrode demo`: a tiny end-to-end run, and the folder rules."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from corrode import levels
from corrode.cli import app
from corrode.demo import CONFIG_NAME, DemoConfig, demo
from corrode.errors import UsageError
from corrode.render import timeline_frame_count

runner = CliRunner()

TINY = dict(
    size=32,
    clean_cars=4,
    rusty_cars=2,
    seg_cars=2,
    seg_views=2,
    seg_epochs=1,
    seg_width=0.25,
    seg_decoder_channels=(8, 8, 8, 8),
    gan_epochs=1,
    base_channels=4,
    residual_blocks=1,
    photos=2,
    photo_size=64,
    timeline_frames=2,
    device="cpu",
)


def test_tiny_demo_end_to_end(tmp_path: Path) -> None:
    stages: list[str] = []
    result = demo(DemoConfig(out=tmp_path / "demo", **TINY), stage=stages.append)
    assert stages == ["synth", "train-seg", "optimize-masks", "train-gan", "render"]
    assert list(result.seconds) == stages and all(s >= 0 for s in result.seconds.values())
    assert (result.gan_run / "model.safetensors").is_file() and (result.seg_run / "config.json").is_file()
    assert len(result.renders) == 2 * len(levels.RUSTY_NAMES)
    for path in result.renders:
        with Image.open(path) as image:
            assert image.size == (64, 64)
    with Image.open(result.grid) as grid:
        assert grid.width > grid.height  # one row per car, four columns
    with Image.open(result.timeline) as gif:
        assert gif.n_frames == timeline_frame_count(3, 2)
    # Rerunning into the same folder needs --overwrite; with it, only the demo's own parts go.
    with pytest.raises(UsageError, match="--overwrite"):
        demo(DemoConfig(out=tmp_path / "demo", **TINY))


def test_refuses_a_folder_that_is_not_a_demo(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("keep me")
    result = runner.invoke(app, ["demo", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "not empty" in result.stderr
    assert (tmp_path / "mine.txt").read_text() == "keep me"


def test_overwrite_removes_only_the_demo_parts(tmp_path: Path) -> None:
    from corrode.demo import _prepare

    (tmp_path / CONFIG_NAME).write_text("{}")
    (tmp_path / "render").mkdir()
    (tmp_path / "render" / "old.png").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("keep me")
    _prepare(tmp_path, overwrite=True)
    assert not (tmp_path / "render").exists() and not (tmp_path / CONFIG_NAME).exists()
    assert (tmp_path / "notes.txt").read_text() == "keep me"

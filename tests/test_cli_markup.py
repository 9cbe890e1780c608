"""Messages print file names and hints literally: square brackets are not Rich markup."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from corrode.cli import app
from corrode.cli.app import fail_line, note, warn


def test_error_line_keeps_square_brackets(tmp_path: Path) -> None:
    missing = tmp_path / "photo [1].jpg"
    result = CliRunner().invoke(app, ["render", str(missing), "--gan", "demo", "--level", "mild"])
    assert result.exit_code != 0
    assert "photo [1].jpg" in result.output


def test_note_warn_and_fail_line_keep_square_brackets(capsys) -> None:
    note("pip install 'corrode[tensorboard]'")
    warn("skipped a [b] file")
    fail_line("c [d].png: truncated")
    err = capsys.readouterr().err
    assert "corrode[tensorboard]" in err and "[b]" in err and "c [d].png" in err


def test_help_names_the_tensorboard_extra() -> None:
    result = CliRunner().invoke(app, ["train-gan", "--help"], env={"COLUMNS": "200"})
    assert "corrode[tensorboard]" in result.output

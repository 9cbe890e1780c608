"""The CLI frame: version, help, fast import, errors -> one line and an exit code."""

import subprocess
import sys

import typer
from typer.testing import CliRunner

from corrode import __version__
from corrode.cli import app
from corrode.cli.app import CorrodeGroup
from corrode.errors import FileError, UsageError

runner = CliRunner()


def test_version_and_help() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.strip() == f"corrode {__version__}"
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0 and "corrodes" in result.stdout


def test_help_does_not_import_heavy_libraries() -> None:
    code = (
        "import sys; from corrode.cli import app; "
        "heavy = [m for m in ('torch', 'cv2', 'kornia', 'skimage', 'matplotlib') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def _app_raising(error: Exception) -> typer.Typer:
    test_app = typer.Typer(cls=CorrodeGroup)

    @test_app.command()
    def boom() -> None:
        raise error

    @test_app.command()
    def other() -> None:
        pass

    return test_app


def test_errors_become_one_line_and_exit_code() -> None:
    result = runner.invoke(_app_raising(FileError("cars/a.jpg", "truncated")), ["boom"])
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: cars/a.jpg: truncated"
    result = runner.invoke(_app_raising(UsageError("bad level")), ["boom"])
    assert result.exit_code == 2 and "bad level" in result.stderr


def test_unknown_command_is_usage_error() -> None:
    assert runner.invoke(app, ["no-such-command"]).exit_code == 2

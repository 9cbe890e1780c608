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


def test_global_flags_are_hoisted_from_after_the_subcommand() -> None:
    from corrode.cli.app import hoist_global_flags

    assert hoist_global_flags(["synth", "out", "-q"]) == ["-q", "synth", "out"]
    assert hoist_global_flags(["--debug", "label", "serve", "x", "--quiet"]) == [
        "--debug",
        "--quiet",
        "label",
        "serve",
        "x",
    ]
    # After `--` everything is the subcommand's, and a flag before the subcommand stays put.
    assert hoist_global_flags(["render", "--", "-q"]) == ["render", "--", "-q"]
    assert hoist_global_flags(["-q"]) == ["-q"]


def test_quiet_after_the_subcommand_works_as_before_it(tmp_path) -> None:
    from corrode.cli.app import settings

    sizes = ["--none", "1", "--mild", "1", "--moderate", "1", "--severe", "1"]
    sizes += ["--carvana-cars", "1", "--carvana-views", "1", "--size", "32", "--workers", "0"]
    for where, args in (
        ("before", ["-q", "synth", str(tmp_path / "a"), *sizes]),
        ("after", ["synth", str(tmp_path / "b"), *sizes, "-q"]),
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, (where, result.output)
        assert result.stderr == "", where
        assert settings.quiet
        settings.quiet = False
    loud = runner.invoke(app, ["synth", str(tmp_path / "c"), *sizes])
    assert loud.exit_code == 0 and "wrote 5 images" in loud.stderr


def test_usage_errors_are_one_plain_line_off_a_terminal() -> None:
    cases = {
        ("synth",): "Error: Missing argument 'out'.",
        ("synth", "x", "--no-such-option"): "Error: No such option: --no-such-option",
        ("--bogus",): "Error: No such option: --bogus",
        ("label", "serve"): "Error: Missing argument 'images'.",
    }
    for args, line in cases.items():
        result = runner.invoke(app, list(args))
        assert result.exit_code == 2, args
        assert result.stderr.splitlines() == [line], (args, result.stderr)


def test_usage_errors_keep_the_box_on_a_terminal(monkeypatch) -> None:
    monkeypatch.setattr(sys.modules["corrode.cli.app"], "stderr_is_terminal", lambda: True)
    result = runner.invoke(app, ["synth"])
    assert result.exit_code == 2
    assert "╭" in result.stderr and "Missing argument" in result.stderr


def test_usage_error_through_a_pipe_is_one_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "corrode", "synth", "--no-such-option"], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == ["Error: No such option: --no-such-option"]

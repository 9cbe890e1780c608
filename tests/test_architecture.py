"""The layout rule of ../shared/DESIGN.md: command modules never import each other (`demo` aside, which
runs the whole pipeline, and the `cli` package, which only calls commands); what two commands need
lives in the shared core or `models/`."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "corrode"
# The modules (or packages) named after subcommands.
COMMANDS = (
    "scrape",
    "label",
    "augment",
    "train_seg",
    "optimize_masks",
    "train_gan",
    "render",
    "train_classifier",
    "classify",
    "evaluate",
    "synth",
)
# (command, imported command, owner): known breaches waiting for their owner's change. Empty today.
EXPECTED_BREACHES: tuple[tuple[str, str, str], ...] = ()


def command_files(command: str) -> list[Path]:
    """The source files of a command: `corrode/<command>.py`, or every file of `corrode/<command>/`."""
    module, package = PACKAGE / f"{command}.py", PACKAGE / command
    files = [module] if module.is_file() else []
    if package.is_dir():
        files += sorted(package.rglob("*.py"))
    return files


def _module_of(path: Path) -> list[str]:
    """`corrode/render/run.py` -> ["corrode", "render", "run"]; a package's __init__ is the package."""
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return parts[:-1] if parts[-1] == "__init__" else parts


def imported_modules(source: str, path: Path) -> set[str]:
    """Every `corrode.*` module a file imports (absolute, relative, `from corrode import x`), anywhere
    in the file (inside functions and TYPE_CHECKING blocks too)."""
    here = _module_of(path)
    package = here if path.name == "__init__.py" else here[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source, filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                parts = base + (node.module.split(".") if node.module else [])
            else:
                parts = (node.module or "").split(".")
            module = ".".join(parts)
            found.add(module)
            # `from corrode import render` imports the module corrode.render.
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return {name for name in found if name == "corrode" or name.startswith("corrode.")}


def commands_imported(command: str) -> set[str]:
    """The other commands that `command`'s files import."""
    breaches = set()
    for path in command_files(command):
        for name in imported_modules(path.read_text(encoding="utf-8"), path):
            parts = name.split(".")
            if len(parts) > 1 and parts[1] in COMMANDS and parts[1] != command:
                breaches.add(parts[1])
    return breaches


def test_every_command_has_source_files() -> None:
    for command in COMMANDS:
        assert command_files(command), f"no corrode/{command}.py or corrode/{command}/"


@pytest.mark.parametrize("command", COMMANDS)
def test_no_command_imports_another(command: str) -> None:
    expected = {other for who, other, _ in EXPECTED_BREACHES if who == command}
    breaches = commands_imported(command) - expected
    assert not breaches, (
        f"corrode.{command} imports the command module(s) {', '.join(sorted(breaches))}: move what they "
        "share to the core (or models/), see ../shared/DESIGN.md"
    )


def test_expected_breaches_are_still_real() -> None:
    # An entry that no longer fails must be taken off the list, so that it cannot come back unseen.
    for command, other, owner in EXPECTED_BREACHES:
        assert other in commands_imported(command), f"{command} -> {other} ({owner}) is fixed: remove it"


@pytest.mark.parametrize(
    "source",
    [
        "import corrode.render\n",
        "from corrode.render import Renderer\n",
        "from corrode import render\n",
        "def f():\n    from corrode.render.run import render\n",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from corrode.render import Segments\n",
        "from ..render import plan\n",
    ],
)
def test_checker_sees_every_import_form(source: str) -> None:
    path = PACKAGE / "evaluate" / "run.py"
    assert "corrode.render" in {".".join(n.split(".")[:2]) for n in imported_modules(source, path)}


def test_checker_keeps_own_package_and_core() -> None:
    path = PACKAGE / "render" / "run.py"
    source = (
        "from corrode.render.plan import plan\nfrom . import files\nfrom corrode.renderer import Renderer\n"
    )
    names = {".".join(n.split(".")[:2]) for n in imported_modules(source, path)}
    assert names <= {"corrode.render", "corrode.renderer"}
    assert "evaluate" not in str(names)

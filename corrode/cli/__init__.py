# ruff: noqa: I001 -- the import order below is the order of commands in --help.
"""The `corrode` command line: one module per command, all registered on one Typer app."""

from __future__ import annotations

# Each import registers its command(s) on `app`; the order here is the order in --help:
# the pipeline, from data to renders.
import corrode.cli.synth  # noqa: F401
import corrode.cli.scrape  # noqa: F401
import corrode.cli.label  # noqa: F401
import corrode.cli.augment  # noqa: F401
import corrode.cli.train_seg  # noqa: F401
import corrode.cli.optimize_masks  # noqa: F401
import corrode.cli.train_gan  # noqa: F401
import corrode.cli.render  # noqa: F401
import corrode.cli.demo  # noqa: F401
import corrode.cli.classify  # noqa: F401
import corrode.cli.evaluate  # noqa: F401
from corrode.cli.app import app


def main() -> None:
    app(prog_name="corrode")


__all__ = ["app", "main"]

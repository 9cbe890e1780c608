"""Finding trained models: an explicit path first, then $CORRODE_HOME, then the shipped demo.

A model argument (`--seg`, `--gan`, `--model`) may be:
- a run folder (`runs/gan`) holding `model.safetensors` (or `best.safetensors`),
- a `.safetensors` file,
- the word `demo`: the small models shipped inside the package, trained on synthetic cars,
- nothing: `$CORRODE_HOME/<kind>/` (default `~/.cache/corrode/<kind>/`).
"""

from __future__ import annotations

import os
from pathlib import Path

from corrode.errors import UsageError
from corrode.runs import BEST_WEIGHTS, WEIGHTS

DEMO = "demo"
ASSETS = Path(__file__).parent / "assets"


class ModelNotFoundError(UsageError):
    """No model where the user pointed, or none installed at all."""


def home() -> Path:
    return Path(os.environ.get("CORRODE_HOME", Path.home() / ".cache" / "corrode")).expanduser()


def demo_path(kind: str) -> Path:
    return ASSETS / DEMO / f"{kind}.safetensors"


def _weights_in(folder: Path, *, prefer_best: bool) -> Path | None:
    order = (BEST_WEIGHTS, WEIGHTS) if prefer_best else (WEIGHTS, BEST_WEIGHTS)
    for name in order:
        if (folder / name).is_file():
            return folder / name
    return None


def find_model(value: str | Path | None, kind: str, *, prefer_best: bool = True) -> Path:
    """The weights file for a `kind` model ("seg", "gan", "classifier"), or ModelNotFoundError.

    `prefer_best` picks `best.safetensors` (best validation) over the last weights when a run
    folder has both.
    """
    how = (
        f"train one (`corrode train-{kind} ...`) and pass its run folder, put it in {home() / kind}, "
        f"or use the small synthetic-car models with `--{kind} demo` (`corrode demo` shows them at work)"
    )
    if value is None or str(value) == "":
        folder = home() / kind
        found = _weights_in(folder, prefer_best=prefer_best) if folder.is_dir() else None
        if found is None:
            raise ModelNotFoundError(f"no {kind} model given and none in {folder}: {how}")
        return found
    if str(value) == DEMO:
        path = demo_path(kind)
        if not path.is_file():
            raise ModelNotFoundError(f"the demo {kind} model is not installed ({path})")
        return path
    path = Path(value).expanduser()
    if path.is_dir():
        found = _weights_in(path, prefer_best=prefer_best)
        if found is None:
            raise ModelNotFoundError(f"{path}: run folder holds no {WEIGHTS} or {BEST_WEIGHTS}")
        return found
    if path.is_file():
        return path
    raise ModelNotFoundError(f"{path}: no such {kind} model file or run folder; {how}")

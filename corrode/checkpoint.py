"""Model weights in safetensors with the config that rebuilds them; training state for resume.

Nothing here unpickles arbitrary objects: weights are safetensors, and training state is read
with `torch.load(weights_only=True)`, which only accepts tensors and plain containers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from corrode.errors import FileError, WriteError, write_reason
from corrode.images import atomic_path


class CheckpointError(FileError):
    """A weights or state file that is missing, corrupt, truncated or for another model."""


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module under DistributedDataParallel and torch.compile wrappers."""
    while True:
        if hasattr(model, "_orig_mod"):
            model = model._orig_mod  # type: ignore[assignment]
        elif isinstance(model, nn.parallel.DistributedDataParallel):
            model = model.module
        else:
            return model


def _clean_key(key: str) -> str:
    # torch.compile inserts "_orig_mod." wherever a submodule was compiled; DDP prefixes "module.".
    key = key.replace("_orig_mod.", "")
    return key[len("module.") :] if key.startswith("module.") else key


def save_model(path: str | Path, model: nn.Module, *, kind: str, config: dict[str, Any]) -> Path:
    """Write `model`'s weights to a safetensors file whose metadata holds `kind` and `config`."""
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    path = Path(path)
    state = {_clean_key(k): v.detach().to("cpu").contiguous() for k, v in unwrap(model).state_dict().items()}
    metadata = {"kind": kind, "config": json.dumps(config, sort_keys=True), "format": "corrode-1"}
    with atomic_path(path) as temp:
        try:
            save_file(state, str(temp), metadata=metadata)
        except (SafetensorError, RuntimeError, ValueError) as exc:  # how safetensors reports a failed write
            raise WriteError(path, _write_failure(exc, path)) from exc
    return path


def _write_failure(exc: BaseException, path: Path) -> str:
    """torch and safetensors say 'file write failed' without the errno; a full disk is the usual cause."""
    import os

    try:
        stats = os.statvfs(path.parent)
        if stats.f_bavail * stats.f_frsize < 1 << 20:
            return "no space left on device"
    except OSError:
        pass
    return write_reason(exc)


def read_model(path: str | Path, *, kind: str) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(config, state dict) from a file written by `save_model`, checking it holds a `kind` model."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if path.is_dir():
        path = path / "model.safetensors"
    if not path.exists():
        raise CheckpointError(path, "no such weights file")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            state = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(path, f"not a readable safetensors file ({exc})") from exc
    found = metadata.get("kind")
    if found != kind:
        what = f"a {found!r} model" if found else "no corrode model metadata"
        raise CheckpointError(path, f"holds {what}, expected a {kind!r} model")
    try:
        config = json.loads(metadata["config"])
    except (KeyError, json.JSONDecodeError) as exc:
        raise CheckpointError(path, "model config missing from the file's metadata") from exc
    return config, state


def load_weights(model: nn.Module, state: dict[str, torch.Tensor], path: str | Path) -> nn.Module:
    """Load `state` into `model` strictly, turning architecture mismatches into CheckpointError."""
    try:
        unwrap(model).load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0] if str(exc) else "mismatch"
        raise CheckpointError(path, f"weights do not fit this architecture ({first})") from exc
    return model


def save_state(path: str | Path, state: dict[str, Any]) -> Path:
    """Training state (tensors, numbers, strings, lists, dicts only) written atomically."""
    path = Path(path)
    with atomic_path(path) as temp:
        try:
            torch.save(state, temp)
        except RuntimeError as exc:  # PytorchStreamWriter: "file write failed" on a full disk
            raise WriteError(path, _write_failure(exc, path)) from exc
    return path


def load_state(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise CheckpointError(path, "no such training-state file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt or unsafe files
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise CheckpointError(path, f"not a readable training state ({first})") from exc
    if not isinstance(state, dict):
        raise CheckpointError(path, "training state is not a dictionary")
    return state


def rng_state() -> dict[str, Any]:
    """Every RNG a training loop draws from, as tensors/plain values for `save_state`."""
    import random

    import numpy as np

    py_state = random.getstate()
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": [py_state[0], list(py_state[1]), py_state[2]],
        "numpy": [np_state[0], torch.from_numpy(np_state[1].copy()), *np_state[2:]],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    import random

    import numpy as np

    torch.set_rng_state(state["torch"])
    version, values, gauss = state["python"]
    random.setstate((version, tuple(values), gauss))
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy(), *rest))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])

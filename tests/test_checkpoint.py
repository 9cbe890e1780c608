"""corrode.checkpoint: safetensors weights that rebuild their model, safe training state."""

import pickle
from pathlib import Path

import pytest
import torch
from torch import nn

from corrode import checkpoint
from corrode.checkpoint import CheckpointError


class Tiny(nn.Module):
    def __init__(self, width: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3)


def test_round_trip_rebuilds_from_file_alone(tmp_path: Path) -> None:
    model = Tiny(5)
    path = checkpoint.save_model(tmp_path / "m.safetensors", model, kind="toy", config={"width": 5})
    config, state = checkpoint.read_model(path, kind="toy")
    rebuilt = checkpoint.load_weights(Tiny(**config), state, path)
    assert torch.equal(rebuilt.conv.weight, model.conv.weight)


def test_wrappers_are_not_saved(tmp_path: Path) -> None:
    holder = nn.ModuleDict({"net": Tiny()})
    holder.net._orig_mod = Tiny()  # what torch.compile leaves behind
    path = checkpoint.save_model(tmp_path / "m.safetensors", holder, kind="toy", config={})
    _, state = checkpoint.read_model(path, kind="toy")
    assert not any("_orig_mod" in key or key.startswith("module.") for key in state)


def test_wrong_kind_truncated_missing_and_architecture(tmp_path: Path) -> None:
    path = checkpoint.save_model(tmp_path / "m.safetensors", Tiny(), kind="seg", config={"width": 3})
    with pytest.raises(CheckpointError, match="holds a 'seg' model, expected a 'gan' model"):
        checkpoint.read_model(path, kind="gan")
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(path.read_bytes()[:40])
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        checkpoint.read_model(broken, kind="seg")
    with pytest.raises(CheckpointError, match="no such weights file"):
        checkpoint.read_model(tmp_path / "absent.safetensors", kind="seg")
    _, state = checkpoint.read_model(path, kind="seg")
    with pytest.raises(CheckpointError, match="do not fit this architecture"):
        checkpoint.load_weights(Tiny(width=4), state, path)


def test_run_folder_resolves_to_weights(tmp_path: Path) -> None:
    checkpoint.save_model(tmp_path / "model.safetensors", Tiny(), kind="seg", config={})
    config, _ = checkpoint.read_model(tmp_path, kind="seg")
    assert config == {}


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_state_round_trip_and_refuses_pickled_objects(tmp_path: Path) -> None:
    state = {"step": 3, "weights": torch.ones(2), "nested": {"lr": [0.1, 0.2]}, "rng": checkpoint.rng_state()}
    path = checkpoint.save_state(tmp_path / "state.pt", state)
    loaded = checkpoint.load_state(path)
    assert loaded["step"] == 3 and torch.equal(loaded["weights"], torch.ones(2))
    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps({"x": Evil()}))
    with pytest.raises(CheckpointError, match="not a readable training state"):
        checkpoint.load_state(evil)
    with pytest.raises(CheckpointError, match="no such training-state file"):
        checkpoint.load_state(tmp_path / "none.pt")


def test_rng_state_restores_every_generator() -> None:
    import random

    import numpy as np

    saved = checkpoint.rng_state()
    first = (torch.rand(3), random.random(), np.random.rand())
    checkpoint.set_rng_state(saved)
    second = (torch.rand(3), random.random(), np.random.rand())
    assert torch.equal(first[0], second[0]) and first[1:] == second[1:]

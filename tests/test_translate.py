"""corrode.translate: a Translator rebuilt from the safetensors file alone; clear errors for bad files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from corrode.checkpoint import CheckpointError, save_model
from corrode.config import to_dict
from corrode.errors import UsageError
from corrode.locate import ModelNotFoundError
from corrode.models.cyclegan import CycleGanConfig, GeneratorSet
from corrode.translate import Translator


def write_gan(path: Path, *, image_size: int = 32, **options) -> tuple[Path, GeneratorSet]:
    torch.manual_seed(0)
    config = CycleGanConfig(base_channels=4, residual_blocks=1, discriminator_channels=4, **options)
    generators = GeneratorSet(config)
    save_model(path, generators, kind="gan", config={"model": to_dict(config), "image_size": image_size})
    return path, generators


@pytest.mark.parametrize(
    "options", [{}, {"generator": "shared", "attention": True}, {"attention": True, "rust_layer": "palette"}]
)
def test_to_level_and_back_match_the_generators(tmp_path: Path, options: dict) -> None:
    path, generators = write_gan(tmp_path / "model.safetensors", **options)
    translator = Translator.load(path, device="cpu")
    assert translator.image_size == 32
    assert translator.levels == ("mild", "moderate", "severe")
    images = torch.rand(2, 3, 32, 32)
    out = translator.to_level(images, "severe")
    assert out.shape == (2, 3, 32, 32) and out.dtype == torch.float32
    assert out.min() >= 0 and out.max() <= 1 and not out.requires_grad
    with torch.no_grad():
        expected = (generators.translate(images * 2 - 1, "none", "severe") + 1) / 2
    assert torch.allclose(out, expected, atol=1e-5)
    back = translator.to_clean(out, "D")  # a level's letter works too
    with torch.no_grad():
        expected_back = (generators.translate(out * 2 - 1, "severe", "none") + 1) / 2
    assert torch.allclose(back, expected_back, atol=1e-5)


def test_loads_from_a_run_folder(tmp_path: Path) -> None:
    write_gan(tmp_path / "run" / "model.safetensors")
    assert Translator.load(tmp_path / "run", device="cpu").levels[-1] == "severe"


def test_bad_level_and_bad_shapes(tmp_path: Path) -> None:
    translator = Translator.load(write_gan(tmp_path / "m.safetensors")[0], device="cpu")
    with pytest.raises(UsageError, match="rusted"):
        translator.to_level(torch.rand(1, 3, 32, 32), "rusted")
    with pytest.raises(UsageError, match="none"):
        translator.to_level(torch.rand(1, 3, 32, 32), "none")
    with pytest.raises(UsageError, match="shape"):
        translator.to_level(torch.rand(3, 32, 32), "mild")
    with pytest.raises(UsageError, match="multiples of 4"):
        translator.to_level(torch.rand(1, 3, 30, 30), "mild")


def test_wrong_kind_corrupt_and_mismatched_files(tmp_path: Path) -> None:
    other = tmp_path / "seg.safetensors"
    save_model(other, torch.nn.Conv2d(3, 1, 1), kind="seg", config={})
    with pytest.raises(CheckpointError, match="'seg'"):
        Translator.load(other, device="cpu")
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x00\x01 not safetensors")
    with pytest.raises(CheckpointError):
        Translator.load(corrupt, device="cpu")
    path, generators = write_gan(tmp_path / "wide.safetensors")
    config = CycleGanConfig(base_channels=8, residual_blocks=1)
    state = {k: v.contiguous() for k, v in generators.state_dict().items()}
    import json

    metadata = {"kind": "gan", "config": json.dumps({"model": to_dict(config), "image_size": 32})}
    save_file(state, str(tmp_path / "mismatch.safetensors"), metadata=metadata)
    with pytest.raises(CheckpointError, match="architecture"):
        Translator.load(tmp_path / "mismatch.safetensors", device="cpu")
    save_file(state, str(tmp_path / "noconfig.safetensors"), metadata={"kind": "gan", "config": "{}"})
    with pytest.raises(CheckpointError, match="config"):
        Translator.load(tmp_path / "noconfig.safetensors", device="cpu")
    with pytest.raises(ModelNotFoundError):
        Translator.load(tmp_path / "missing.safetensors", device="cpu")

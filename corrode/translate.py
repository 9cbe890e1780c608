"""Inference with a trained multi-domain CycleGAN: clean car -> a corrosion level, and back.

    translator = Translator.load("runs/gan")            # or a .safetensors file, or "demo"
    rusty = translator.to_level(images, "severe")      # (B, 3, S, S) float [0, 1], background black

The weights file alone rebuilds the generators: its metadata holds their config and image size.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch

from corrode.checkpoint import CheckpointError
from corrode.errors import UsageError

KIND = "gan"


class Translates(Protocol):
    """What render and evaluate need from a translator (`Translator` fits; so do the ONNX engine and
    tests' stand-ins). `image_size` is the size the model was trained at."""

    image_size: int

    def to_level(self, images: torch.Tensor, level: str) -> torch.Tensor: ...


@dataclass
class Translator:
    """The generators of a trained run, ready for inference on one device."""

    generators: torch.nn.Module  # corrode.models.cyclegan.GeneratorSet
    image_size: int
    clean: str
    levels: tuple[str, ...]  # the target levels it can make (every level but the clean one)
    device: torch.device
    dtype: torch.dtype | None
    source: Path

    @classmethod
    def load(
        cls, path_or_run: str | Path | None, device: str = "auto", precision: str = "auto"
    ) -> Translator:
        """From a run folder, a .safetensors file, "demo", or None ($CORRODE_HOME/gan)."""
        from corrode.checkpoint import load_weights, read_model
        from corrode.config import from_dict
        from corrode.device import choose_device, prepare, resolve_precision
        from corrode.errors import ConfigError
        from corrode.locate import find_model
        from corrode.models.cyclegan import PALETTE_COLOURS, CycleGanConfig, GeneratorSet

        path = find_model(None if path_or_run is None else str(path_or_run), KIND)
        config, state = read_model(path, kind=KIND)
        try:
            model_config = from_dict(CycleGanConfig, config["model"])
            image_size = int(config["image_size"])
        except (KeyError, TypeError, ValueError, ConfigError) as exc:
            raise CheckpointError(path, f"gan model config in the metadata is unusable ({exc})") from exc
        # The palette (if any) comes from the file: a placeholder, not the textures, to start from.
        generators = GeneratorSet(model_config, palette=torch.zeros(PALETTE_COLOURS, 3))
        load_weights(generators, state, path)
        target = choose_device(device)
        generators = prepare(generators, target).eval()
        return cls(
            generators=generators,
            image_size=image_size,
            clean=model_config.clean,
            levels=model_config.rusty,
            device=target,
            dtype=resolve_precision(precision, target),
            source=path,
        )

    def _level(self, level: str) -> str:
        from corrode import levels

        if level in self.levels:
            return level
        name = levels.get(level).name
        if name not in self.levels:
            raise UsageError(f"this model cannot make level {name!r}: it knows {', '.join(self.levels)}")
        return name

    def _run(self, images: torch.Tensor, source: str, target: str) -> torch.Tensor:
        from corrode.device import autocast, to_device

        if images.ndim != 4 or images.shape[1] != 3:
            raise UsageError(f"expected images of shape (B, 3, H, W), got {tuple(images.shape)}")
        if images.shape[-1] % 4 or images.shape[-2] % 4:
            raise UsageError(f"image height and width must be multiples of 4, got {tuple(images.shape[-2:])}")
        with torch.inference_mode(), autocast(self.device, self.dtype):
            batch = to_device(images.float(), self.device) * 2 - 1
            out = self.generators.translate(batch, source, target)
        return ((out.float() + 1) / 2).clamp(0, 1).to(images.device).contiguous()

    def to_level(self, images: torch.Tensor, level: str) -> torch.Tensor:
        """Clean cars `(B, 3, S, S)` float [0, 1], masked on black -> the same cars at `level`."""
        return self._run(images, self.clean, self._level(level))

    def to_clean(self, images: torch.Tensor, level: str) -> torch.Tensor:
        """Cars at `level` `(B, 3, S, S)` float [0, 1], masked on black -> the same cars clean."""
        return self._run(images, self._level(level), self.clean)

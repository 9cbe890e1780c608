"""The level classifier's inference wrapper: `classify` reports with it, `evaluate` judges the GAN's
cars with it and takes its penultimate layer as the feature space of FID and KID.

    classifier = Classifier.load("runs/classifier")     # or a .safetensors file, "demo", None
    probabilities = classifier.predict(images)          # (B, num_levels), columns in level order
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from corrode import levels

if TYPE_CHECKING:
    import torch
    from torch import nn

    from corrode.models.classifier import LevelClassifier


class Classifier:
    """A trained level classifier on a device. Images are `(B, 3, H, W)` float in [0, 1] with the
    background black (as in training), or a list of `(H, W, 3)` uint8 arrays; any size (resized)."""

    def __init__(self, model: LevelClassifier, device: torch.device | str = "cpu", path: Path | None = None):
        import torch

        from corrode.device import prepare

        self.device = torch.device(device)
        self.model = prepare(model, self.device, cpu_channels_last=True).eval()
        self.path = path
        self.names = levels.NAMES[: model.config.num_levels]

    @classmethod
    def load(cls, path_or_run: str | Path | None = None, device: str = "auto") -> Classifier:
        """From a run folder, a .safetensors file, `demo` or $CORRODE_HOME/classifier (corrode.locate)."""
        from corrode.checkpoint import CheckpointError, load_weights, read_model
        from corrode.config import from_dict
        from corrode.device import choose_device
        from corrode.errors import ConfigError
        from corrode.locate import find_model
        from corrode.models.classifier import ClassifierConfig, LevelClassifier

        path = find_model(path_or_run, "classifier")
        config_data, state = read_model(path, kind="classifier")
        try:
            config = from_dict(ClassifierConfig, config_data)
        except ConfigError as exc:
            raise CheckpointError(path, f"unusable classifier config ({exc})") from exc
        model = LevelClassifier(config)
        load_weights(model, state, path)
        return cls(model, choose_device(device), path)

    @property
    def image_size(self) -> int:
        return int(self.model.config.size)

    @property
    def num_features(self) -> int:
        return int(self.model.num_features)

    def _prepare(self, images: torch.Tensor | Sequence[np.ndarray]) -> torch.Tensor:
        import torch
        from torch.nn import functional

        from corrode.datasets import resize_pair
        from corrode.images import to_tensor

        size = self.image_size
        if not isinstance(images, torch.Tensor):
            # The training path: cv2 area resize of uint8 arrays (corrode.datasets.resize_pair).
            return torch.stack([to_tensor(resize_pair(np.asarray(image), None, size)[0]) for image in images])
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected (B, 3, H, W) images, got {tuple(images.shape)}")
        images = images.float()
        if images.shape[-2:] != (size, size):
            images = functional.interpolate(images, size=(size, size), mode="bilinear", antialias=True)
        return images.clamp(0.0, 1.0)

    def _run(
        self, images: torch.Tensor | Sequence[np.ndarray], batch_size: int, features: bool
    ) -> torch.Tensor:
        import torch

        from corrode.models.classifier import level_probabilities

        prepared = self._prepare(images)
        outputs = []
        with torch.inference_mode():
            for start in range(0, prepared.shape[0], batch_size):
                batch = prepared[start : start + batch_size].to(self.device)
                if features:
                    outputs.append(self.model.features(batch).float().cpu())
                else:
                    outputs.append(level_probabilities(self.model(batch)).cpu())
        width = self.num_features if features else len(self.names)
        return torch.cat(outputs) if outputs else torch.zeros(0, width)

    def predict(self, images: torch.Tensor | Sequence[np.ndarray], batch_size: int = 64) -> torch.Tensor:
        """(B, num_levels) level probabilities (CPU float), columns in level order."""
        return self._run(images, batch_size, features=False)

    def features(self, images: torch.Tensor | Sequence[np.ndarray], batch_size: int = 64) -> torch.Tensor:
        """(B, num_features) penultimate-layer features (CPU float): the FID/KID feature space."""
        return self._run(images, batch_size, features=True)

    def feature_module(self) -> nn.Module:
        """`features` as the nn.Module torchmetrics' FID and KID accept."""
        from corrode.metrics import feature_module

        return feature_module(lambda images: self.features(images).to(images.device), self.num_features)


def expected_level(probabilities: torch.Tensor) -> torch.Tensor:
    """(B,) probability-weighted mean level index."""
    import torch

    return probabilities @ torch.arange(probabilities.shape[1], dtype=probabilities.dtype)

"""`corrode classify`: the corrosion level of each photo, with the probability of every level.

`Classifier` is the inference API (also the feature space of `corrode evaluate`'s FID and KID);
`classify(cfg)` is the batch work function: per photo read -> (segment the car and black out the
background, when a segmenter is given) -> resize to the model's size -> probabilities. A photo that
cannot be read gives one failed result and the rest go on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import numpy as np

from corrode import levels
from corrode.config import require
from corrode.errors import CorrodeError

if TYPE_CHECKING:
    import torch
    from torch import nn

    from corrode.models.classifier import LevelClassifier
    from corrode.render import Segments


class Classifier:
    """A trained level classifier on a device. Images are `(B, 3, H, W)` float in [0, 1] with the
    background black (as in training), or a list of `(H, W, 3)` uint8 arrays; any size (resized)."""

    def __init__(self, model: LevelClassifier, device: torch.device | str = "cpu", path: Path | None = None):
        import torch

        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
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


# --- the batch command's work ------------------------------------------------------------------------


@dataclass(frozen=True)
class ClassifyConfig:
    inputs: tuple[str, ...] = ()
    model: str | None = None
    seg: str | None = None
    recursive: bool = False
    batch_size: int = 16
    mask_resolution: int = 512
    device: str = "auto"

    def __post_init__(self) -> None:
        require(self.batch_size >= 1, f"batch_size {self.batch_size} must be >= 1")
        require(self.mask_resolution >= 32, f"mask_resolution {self.mask_resolution} must be >= 32")


@dataclass
class Prediction:
    """One input's result: its level and probabilities, or the reason it failed."""

    input: Path
    level: str | None = None
    probabilities: dict[str, float] | None = None
    expected: float | None = None
    error: str | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None

    def as_dict(self) -> dict[str, object]:
        return {
            "input": str(self.input),
            "level": self.level,
            "probabilities": self.probabilities,
            "expected_level": None if self.expected is None else round(self.expected, 4),
            "status": "failed" if self.failed else "classified",
            "error": self.error,
        }

    def line(self) -> str:
        """`path<TAB>level<TAB>none=0.012 mild=...` (tab-separated for `cut`)."""
        assert self.probabilities is not None
        values = " ".join(f"{name}={value:.3f}" for name, value in self.probabilities.items())
        return f"{self.input}\t{self.level}\t{values}"


def _read(path: Path, segmenter: Segments | None, resolution: int) -> np.ndarray:
    from corrode.images import ImageError, read_image

    image = read_image(path, background=(0, 0, 0))
    if segmenter is None:
        return image
    from corrode.render import segment_masks

    (mask,) = segment_masks(segmenter, [image], resolution)
    if not mask.any():
        raise ImageError(path, "no car found by the segmentation model")
    return image * mask[:, :, None].astype(np.uint8)


def classify(
    cfg: ClassifyConfig,
    *,
    classifier: Classifier | None = None,
    segmenter: Segments | None = None,
    stdin: TextIO | None = None,
    on_result: Callable[[Prediction], None] | None = None,
) -> list[Prediction]:
    """Classify every input (files, folders, globs, `-` for a list on stdin); one Prediction each.

    Models are loaded from `cfg` unless given. `on_result` is called as each result is known.
    """
    from corrode.batch import collect_inputs

    paths = collect_inputs(cfg.inputs, recursive=cfg.recursive, stdin=stdin)
    if classifier is None:
        classifier = Classifier.load(cfg.model, cfg.device)
    if segmenter is None and cfg.seg is not None:
        from corrode.locate import find_model
        from corrode.segment import Segmenter

        segmenter = Segmenter.load(find_model(cfg.seg, "seg"), device=cfg.device)
    results: list[Prediction] = []

    def report(prediction: Prediction) -> None:
        results.append(prediction)
        if on_result is not None:
            on_result(prediction)

    for start in range(0, len(paths), cfg.batch_size):
        chunk: list[tuple[Path, np.ndarray]] = []
        for path in paths[start : start + cfg.batch_size]:
            try:
                chunk.append((path, _read(path, segmenter, cfg.mask_resolution)))
            except CorrodeError as exc:
                report(Prediction(path, error=str(getattr(exc, "reason", exc))))
        if not chunk:
            continue
        probabilities = classifier.predict([image for _, image in chunk], batch_size=cfg.batch_size)
        expected = expected_level(probabilities)
        for (path, _), row, mean in zip(chunk, probabilities.tolist(), expected.tolist(), strict=True):
            best = int(np.argmax(row))
            report(
                Prediction(
                    path,
                    level=classifier.names[best],
                    probabilities={
                        name: round(float(p), 4) for name, p in zip(classifier.names, row, strict=True)
                    },
                    expected=float(mean),
                )
            )
    order = {path: index for index, path in enumerate(paths)}
    results.sort(key=lambda prediction: order.get(prediction.input, len(order)))
    return results

"""The segmentation inference API other commands use (optimize-masks, render, classify).

segmenter = Segmenter.load("runs/seg")          # or a .safetensors file, "demo", None ($CORRODE_HOME)
probability = segmenter.probabilities(image)    # (H, W) float32 in [0, 1]: the car, at the image's size
masks = segment_masks(segmenter, images, 512)   # full-size bool car masks, cleaned by corrode.masks
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F

from corrode.checkpoint import CheckpointError, load_weights, read_model
from corrode.config import from_dict
from corrode.device import autocast, choose_device, prepare, resolve_precision, to_device
from corrode.errors import ConfigError, UsageError
from corrode.locate import find_model
from corrode.models.unet import CarSegmenter, SegmenterConfig


class Segments(Protocol):
    """What a command needs from a segmenter (`Segmenter` fits; tests pass stand-ins)."""

    def probabilities_batch(self, images: list[np.ndarray]) -> list[np.ndarray]: ...


def _check_image(image: np.ndarray, index: int | None = None) -> None:
    where = "image" if index is None else f"image {index}"
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        shape = getattr(image, "shape", None)
        dtype = getattr(image, "dtype", type(image).__name__)
        raise UsageError(f"{where}: expected an (H, W, 3) uint8 RGB array, got shape {shape} of {dtype}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise UsageError(f"{where}: empty image {image.shape}")


@dataclass
class Segmenter:
    """A trained `CarSegmenter` ready for inference on RGB uint8 arrays of any size."""

    model: CarSegmenter
    device: torch.device
    dtype: torch.dtype | None = None
    path: Path | None = None
    batch_size: int = 8

    @classmethod
    def load(
        cls,
        path_or_run: str | Path | None,
        device: str = "auto",
        *,
        precision: str = "auto",
        batch_size: int = 8,
    ) -> Segmenter:
        """A run folder (best weights first), a .safetensors file, `demo`, or None for $CORRODE_HOME/seg."""
        path = find_model(path_or_run, "seg")
        config_values, state = read_model(path, kind="seg")
        try:
            config = from_dict(SegmenterConfig, config_values)
        except ConfigError as exc:
            raise CheckpointError(path, f"segmenter config in the file is not usable ({exc})") from exc
        model = CarSegmenter(config)
        load_weights(model, state, path)
        chosen = choose_device(device)
        model = prepare(model.eval(), chosen)
        return cls(model, chosen, resolve_precision(precision, chosen), path, batch_size)

    @property
    def size(self) -> int:
        """The square side the model runs at; images are resized to it and the result back."""
        return self.model.config.size

    def probabilities(self, image: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 RGB -> (H, W) float32 in [0, 1], the probability that each pixel is the car."""
        return self.probabilities_batch([image])[0]

    def probabilities_batch(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """`probabilities` for many images of any sizes, run `batch_size` at a time."""
        for index, image in enumerate(images):
            _check_image(image, index if len(images) > 1 else None)
        results: list[np.ndarray] = []
        for start in range(0, len(images), self.batch_size):
            chunk = images[start : start + self.batch_size]
            batch = torch.stack([self._resize_in(image) for image in chunk])
            probability = self.predict(batch)
            for image, one in zip(chunk, probability, strict=True):
                height, width = image.shape[:2]
                back = F.interpolate(
                    one[None, None], size=(height, width), mode="bilinear", align_corners=False
                )
                results.append(back[0, 0].clamp_(0, 1).numpy().astype(np.float32, copy=False))
        return results

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) float in [0, 1] at the model's size -> (B, S, S) float32 car probability (CPU)."""
        with torch.inference_mode(), autocast(self.device, self.dtype):
            logits = self.model(to_device(images, self.device))
        return logits.float().softmax(dim=1)[:, 1].cpu()

    def _resize_in(self, image: np.ndarray) -> torch.Tensor:
        tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(255.0)
        if tensor.shape[1:] == (self.size, self.size):
            return tensor
        # Antialiasing when shrinking (a 1918 px photo to 256 px) keeps thin edges from aliasing.
        return F.interpolate(
            tensor[None], size=(self.size, self.size), mode="bilinear", antialias=True, align_corners=False
        )[0].clamp_(0, 1)


def segment_masks(segmenter: Segments, images: Sequence[np.ndarray], resolution: int) -> list[np.ndarray]:
    """Full-resolution bool car masks: segment and clean at most `resolution` px, then upsample."""
    import cv2

    from corrode.compositing import resize
    from corrode.masks import optimize_mask, threshold_probability

    small = []
    for image in images:
        height, width = image.shape[:2]
        scale = min(1.0, resolution / max(height, width))
        small.append(resize(image, (max(1, round(width * scale)), max(1, round(height * scale)))))
    probabilities = segmenter.probabilities_batch(small)
    masks = []
    for image, probability in zip(images, probabilities, strict=True):
        mask, _ = threshold_probability(probability)
        cleaned = optimize_mask(mask).mask
        height, width = image.shape[:2]
        if cleaned.shape != (height, width):
            # Bilinear on 0/255 then a 50% cut gives smooth edges instead of blocky upscaled pixels.
            grown = cv2.resize(
                cleaned.astype(np.uint8) * 255, (width, height), interpolation=cv2.INTER_LINEAR
            )
            cleaned = grown > 127
        masks.append(cleaned)
    return masks

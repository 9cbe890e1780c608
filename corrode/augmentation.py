"""Image + mask augmentation: the paper's partial views (figure 7) and the usual random ops.

Two presets, usable offline (`corrode augment`, `augment()`) and online inside training loops:

- `partial-views`: crops of the left, centre and right part of each car, boxes computed from the
  mask's bounding box (`partial_view_boxes`, `partial_views`). Deterministic.
- `random`: a kornia `AugmentationSequential` with image and mask keys (`build_pipeline`):
  horizontal flip, random resized crop, small affine, colour jitter (image only).

Online use in a training loop (batches on any device; images `(B, 3, H, W)` float in [0, 1], masks
`(B, 1, H, W)` float in {0, 1}):

    pipeline = build_pipeline(PipelineConfig(size=256)).to(device)
    images, masks = augment_batch(images, masks, pipeline)  # (B, 3, 256, 256), (B, 1, 256, 256)

Masks are resampled nearest (kornia's default for the mask key) and re-binarised, so they stay
aligned with their images and hold only 0 and 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from corrode.config import require
from corrode.errors import UsageError

if TYPE_CHECKING:
    import torch
    from kornia.augmentation import AugmentationSequential

PARTIAL_VIEWS = "partial-views"
RANDOM = "random"
PRESETS = (PARTIAL_VIEWS, RANDOM)
VIEWS = ("left", "centre", "right")


@dataclass(frozen=True)
class PipelineConfig:
    """The random preset: what `build_pipeline` builds. Probabilities are per sample."""

    size: int = 256  # output is size x size
    flip_probability: float = 0.5
    crop_scale: tuple[float, float] = (0.6, 1.0)  # area of the crop, as a fraction of the input
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)  # aspect ratio of the crop
    affine_probability: float = 0.5
    degrees: float = 10.0
    translate: float = 0.05  # fraction of width and height
    scale: tuple[float, float] = (0.9, 1.1)
    jitter_probability: float = 0.8
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    hue: float = 0.03

    def __post_init__(self) -> None:
        require(self.size >= 8, f"size must be at least 8 pixels, got {self.size}")
        for name in ("flip_probability", "affine_probability", "jitter_probability"):
            value = getattr(self, name)
            require(0.0 <= value <= 1.0, f"{name} must lie in [0, 1], got {value}")
        low, high = self.crop_scale
        require(0.0 < low <= high <= 1.0, f"crop_scale must satisfy 0 < low <= high <= 1: {self.crop_scale}")
        require(0.0 < self.crop_ratio[0] <= self.crop_ratio[1], f"bad crop_ratio {self.crop_ratio}")
        require(0.0 < self.scale[0] <= self.scale[1], f"bad affine scale {self.scale}")
        require(0.0 <= self.translate < 0.5, f"translate must lie in [0, 0.5), got {self.translate}")
        require(0.0 <= self.hue <= 0.5, f"hue must lie in [0, 0.5], got {self.hue}")


def build_pipeline(config: PipelineConfig = PipelineConfig()) -> AugmentationSequential:
    """The random preset as a kornia `AugmentationSequential(..., data_keys=["input", "mask"])`.

    Call it through `augment_batch`. Outputs are `config.size` square. Affine borders are filled
    with zeros in both image and mask: black background, as in masked images.
    """
    import kornia.augmentation as augmentation

    size = (config.size, config.size)
    return augmentation.AugmentationSequential(
        augmentation.RandomHorizontalFlip(p=config.flip_probability),
        augmentation.RandomResizedCrop(size, scale=config.crop_scale, ratio=config.crop_ratio),
        augmentation.RandomAffine(
            config.degrees,
            translate=(config.translate, config.translate),
            scale=config.scale,
            p=config.affine_probability,
        ),
        augmentation.ColorJitter(
            config.brightness, config.contrast, config.saturation, config.hue, p=config.jitter_probability
        ),
        data_keys=["input", "mask"],
    )


def augment_batch(
    images: torch.Tensor,
    masks: torch.Tensor,
    pipeline: AugmentationSequential,
    *,
    seed: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run `pipeline` on `(B, 3, H, W)` images in [0, 1] and `(B, 1, H, W)` masks in {0, 1}.

    Returns `(B, 3, S, S)` images clamped to [0, 1] and `(B, 1, S, S)` masks in {0, 1}, on the
    input's device. kornia draws from torch's global generator: leave `seed` None in training (seed
    the run instead); with a `seed`, the same inputs give the same outputs and the global generator
    is left as it was.
    """
    import torch

    if images.ndim != 4 or images.shape[1] != 3:
        raise UsageError(f"images must be (B, 3, H, W), got {tuple(images.shape)}")
    if masks.ndim != 4 or masks.shape[1] != 1 or masks.shape[0] != images.shape[0]:
        raise UsageError(f"masks must be (B, 1, H, W) matching images, got {tuple(masks.shape)}")
    if masks.shape[2:] != images.shape[2:]:
        raise UsageError(f"masks are {tuple(masks.shape[2:])} but images are {tuple(images.shape[2:])}")
    masks = masks.to(images.dtype)
    if seed is None:
        out_images, out_masks = pipeline(images, masks)
    else:
        devices = [images.device.index or 0] if images.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            out_images, out_masks = pipeline(images, masks)
    return out_images.clamp(0.0, 1.0), (out_masks > 0.5).to(images.dtype)


def _span(start: int, length: int, size: int, limit: int) -> tuple[int, int]:
    """Grow (or keep) `[start, start + length)` to `size`, centred, then shift it inside [0, limit)."""
    size = min(max(size, 1), limit)
    begin = start - (size - length) // 2
    begin = min(max(begin, 0), limit - size)
    return begin, begin + size


def partial_view_boxes(masks: torch.Tensor, view_fraction: float = 0.5, margin: float = 0.05) -> torch.Tensor:
    """Crop boxes of the left, centre and right part of each car: `(B, 3, 4)` int64 `(x0, y0, x1, y1)`.

    `masks` is `(B, 1, H, W)` (or `(B, H, W)`), nonzero on the car. Each view spans `view_fraction`
    of the car's width (its left part, its middle, its right part) and the car's full height plus
    `margin` of it above and below (so the roof is not cut at the edge); the box is then widened or
    heightened towards a square (so the resize to a square output does not distort the car),
    centred on the view and shifted to stay inside the image. Ends are exclusive.
    A mask with no car gets the whole image for all three views.
    """
    import torch

    if not 0.0 < view_fraction <= 1.0:
        raise UsageError(f"view_fraction must lie in (0, 1], got {view_fraction}")
    if margin < 0:
        raise UsageError(f"margin must not be negative, got {margin}")
    if masks.ndim == 4:
        masks = masks[:, 0]
    if masks.ndim != 3:
        raise UsageError(f"masks must be (B, 1, H, W), got {tuple(masks.shape)}")
    height, width = int(masks.shape[1]), int(masks.shape[2])
    columns = (masks != 0).any(dim=1).cpu().numpy()  # (B, W)
    rows = (masks != 0).any(dim=2).cpu().numpy()  # (B, H)
    boxes = np.zeros((masks.shape[0], len(VIEWS), 4), np.int64)
    for index in range(masks.shape[0]):
        car_columns = np.flatnonzero(columns[index])
        car_rows = np.flatnonzero(rows[index])
        if car_columns.size == 0:
            boxes[index] = (0, 0, width, height)
            continue
        left, right = int(car_columns[0]), int(car_columns[-1]) + 1
        top, bottom = int(car_rows[0]), int(car_rows[-1]) + 1
        extra = round(margin * (bottom - top))
        top, bottom = max(top - extra, 0), min(bottom + extra, height)
        car_width, car_height = right - left, bottom - top
        view_width = max(round(view_fraction * car_width), 1)
        starts = (left, left + (car_width - view_width) // 2, right - view_width)
        for view, start in enumerate(starts):
            box_width = max(view_width, min(car_height, width))
            box_height = max(car_height, min(view_width, height))
            x0, x1 = _span(start, view_width, box_width, width)
            y0, y1 = _span(top, car_height, box_height, height)
            boxes[index, view] = (x0, y0, x1, y1)
    return torch.from_numpy(boxes)


def partial_views(
    images: torch.Tensor, masks: torch.Tensor, size: int, view_fraction: float = 0.5
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The partial-views preset: `{"left"|"centre"|"right": (images (B, 3, S, S), masks (B, 1, S, S))}`.

    Crops the `partial_view_boxes` and resizes them to `size`: antialiased bilinear for images,
    nearest for masks (both on pixel centres, so they stay aligned). Works on any device.
    """
    import torch
    import torch.nn.functional as functional

    boxes = partial_view_boxes(masks, view_fraction).tolist()
    masks = masks.to(images.dtype)
    result: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    for view_index, view in enumerate(VIEWS):
        view_images, view_masks = [], []
        for index in range(images.shape[0]):
            x0, y0, x1, y1 = boxes[index][view_index]
            image = images[index : index + 1, :, y0:y1, x0:x1]
            mask = masks[index : index + 1, :, y0:y1, x0:x1]
            view_images.append(
                functional.interpolate(
                    image, size=(size, size), mode="bilinear", antialias=True, align_corners=False
                ).clamp(0.0, 1.0)
            )
            view_masks.append(functional.interpolate(mask, size=(size, size), mode="nearest-exact"))
        result[view] = (torch.cat(view_images), torch.cat(view_masks))
    return result

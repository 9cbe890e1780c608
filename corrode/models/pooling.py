"""Pooling over the car only: feature maps averaged over the cells the car covers, not the picture.

Masked images carry their car mask in themselves (the background is uniform: black in [0, 1], -1 in
[-1, 1]); `car` is that mask as a `(B, 1, H, W)` float at the input's resolution. Each cell of a
smaller map is weighted by the share of its pixels that are car, so what a pooled detector measures
is the share of the car's surface it fires on, whatever the car's size in the picture.
"""

from __future__ import annotations

import torch
from torch.nn import functional


def car_mask(images: torch.Tensor) -> torch.Tensor:
    """`(B, 1, H, W)` bool: the car in masked `(B, 3, H, W)` images in [-1, 1] (not the -1 background)."""
    return images.amax(1, keepdim=True) > -0.95


def car_pool(maps: torch.Tensor, car: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`(B, C, h, w)` maps and a `(B, 1, H, W)` car mask -> the `(B, C)` car average and the
    `(B, 1, h, w)` cell weights it used (0 where a cell holds no car); no car at all gives 0."""
    weights = functional.adaptive_avg_pool2d(car, maps.shape[2:]).to(maps.dtype)
    return (maps * weights).sum((2, 3)) / weights.sum((2, 3)).clamp_min(1e-6), weights

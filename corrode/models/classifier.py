"""The corrosion-level classifier: torchvision's MobileNetV2 with an ordinal (cumulative-link) head.

The levels are ordered (none < mild < moderate < severe), so the head does not score four unrelated
classes. It scores each image once, `s = w . features`, and compares the score with three ordered
thresholds `t_0 > t_1 > t_2`: `P(level > k) = sigmoid(s + t_k)` (CORAL, Cao et al. 2020, with the
thresholds kept ordered by construction). Level probabilities are differences of these cumulative
probabilities, so they are never negative and always sum to one, and confusing "none" with "severe"
costs more than confusing it with "mild".

`features()` is the penultimate layer (global-average-pooled MobileNetV2 features), used by
`corrode evaluate` as an offline feature space for FID and KID.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional

from corrode.config import require

# Inputs are [0, 1] RGB; MobileNetV2's ImageNet weights expect these statistics.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ClassifierConfig:
    """What builds a `LevelClassifier`; saved in the weights file's metadata.

    `width` is MobileNetV2's width multiplier (1.0 is the standard one; ImageNet weights exist only
    for it). `size` is the square side the model is trained and run at.
    """

    width: float = 1.0
    size: int = 128
    num_levels: int = 4
    dropout: float = 0.2

    def __post_init__(self) -> None:
        require(0 < self.width <= 4, f"width must be in (0, 4], got {self.width}")
        require(self.size >= 32 and self.size % 32 == 0, f"size must be a multiple of 32, got {self.size}")
        require(self.num_levels >= 2, f"num_levels must be at least 2, got {self.num_levels}")
        require(0 <= self.dropout < 1, f"dropout must be in [0, 1), got {self.dropout}")


class LevelClassifier(nn.Module):
    """(B, 3, H, W) float in [0, 1] -> (B, num_levels - 1) cumulative logits `logit P(level > k)`."""

    def __init__(self, config: ClassifierConfig | None = None) -> None:
        super().__init__()
        from torchvision.models import mobilenet_v2

        self.config = config or ClassifierConfig()
        backbone = mobilenet_v2(weights=None, width_mult=self.config.width)
        self.encoder = backbone.features
        self.num_features = int(backbone.last_channel)
        self.dropout = nn.Dropout(self.config.dropout)
        self.score = nn.Linear(self.num_features, 1, bias=False)
        # Thresholds t_0 > t_1 > ...: the first is free, each next one is lower by a positive gap.
        # Initialised one logit apart, so an untrained model already spreads over all levels.
        gaps = self.config.num_levels - 2
        self.first_threshold = nn.Parameter(torch.tensor([gaps / 2.0]))
        self.threshold_gaps = nn.Parameter(torch.full((gaps,), math.log(math.e - 1.0)))
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def thresholds(self) -> torch.Tensor:
        """(num_levels - 1,) strictly decreasing thresholds."""
        steps = functional.softplus(self.threshold_gaps)
        return torch.cat([self.first_threshold, self.first_threshold - torch.cumsum(steps, dim=0)])

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] -> (B, num_features): the pooled penultimate layer."""
        x = self.encoder((images - self.mean) / self.std)
        return functional.adaptive_avg_pool2d(x, 1).flatten(1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        score = self.score(self.dropout(self.features(images)))
        return score + self.thresholds()


def level_probabilities(cumulative_logits: torch.Tensor) -> torch.Tensor:
    """(B, K - 1) cumulative logits -> (B, K) level probabilities (non-negative, summing to 1)."""
    above = torch.sigmoid(cumulative_logits.float())
    ones = torch.ones_like(above[:, :1])
    zeros = torch.zeros_like(above[:, :1])
    bounds = torch.cat([ones, above, zeros], dim=1)
    # Ordered thresholds make `above` decreasing in k; clamp guards the last float ulp.
    return (bounds[:, :-1] - bounds[:, 1:]).clamp_min(0.0)


def ordinal_loss(
    cumulative_logits: torch.Tensor,
    targets: torch.Tensor,
    *,
    label_smoothing: float = 0.0,
    sample_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean binary cross-entropy of `level > k` over the K - 1 thresholds (the CORAL loss).

    `targets` are level indices (B,). Label smoothing pulls each binary target towards 0.5 by
    `label_smoothing / 2`, which keeps a noisily labelled image from pushing its score without end.
    `sample_weights` (B,) weight each image (class-balanced weights); they are normalised to mean 1.
    """
    levels = torch.arange(cumulative_logits.shape[1], device=targets.device)
    binary = (targets[:, None] > levels[None, :]).float()
    binary = binary * (1.0 - label_smoothing) + 0.5 * label_smoothing
    per_image = functional.binary_cross_entropy_with_logits(
        cumulative_logits.float(), binary, reduction="none"
    ).sum(dim=1)
    if sample_weights is None:
        return per_image.mean()
    weights = sample_weights.float()
    return (per_image * weights).sum() / weights.sum().clamp_min(1e-12)

"""The corrosion-level classifier: torchvision's MobileNetV2 with one logit per level (softmax head).

`forward` gives `(B, num_levels)` level logits; `level_probabilities` turns them into probabilities
and `level_loss` is their cross-entropy. The levels are ordered, and an ordinal (cumulative-link)
head with one score and ordered thresholds was this model's first design; measured on `corrode synth`
at 64 px it learned far worse than this head (held-out accuracy 0.69 against 0.91 after 10 epochs,
same network and schedule, mild recall 0.20 against 0.86): under Adam its three thresholds move at
one weight's pace while the score they cut moves with all 1280 weights, so the cuts lag the scores,
and the cures tried (a 20x threshold learning rate, refitting them every epoch) made the
probabilities overconfident and the training loss rise. The order is still measured (MAE in levels).

`features()` is the penultimate layer (global-average-pooled MobileNetV2 features), used by
`corrode evaluate` as an offline feature space for FID and KID.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional

from corrode.config import require
from corrode.models.pooling import car_pool

# Inputs are [0, 1] RGB; MobileNetV2's ImageNet weights expect these statistics.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
POOLINGS = ("image", "car", "car_max")


@dataclass(frozen=True)
class ClassifierConfig:
    """What builds a `LevelClassifier`; saved in the weights file's metadata.

    `width` is MobileNetV2's width multiplier (1.0 is the standard one; ImageNet weights exist only
    for it). `size` is the square side the model is trained and run at.

    `temperature` divides the logits (temperature scaling, Guo et al. 2017): training runs at 1, fits
    it on the validation split after every epoch, and the weights files carry the fitted value, so
    `classify`, `evaluate` and the GAN's judge read calibrated probabilities; it never changes which
    level wins.

    `local_features` (0: off, MobileNetV2 alone) adds that many channels from each block in
    `local_taps` (MobileNetV2's feature blocks; 1, 3 and 6 end the stride 2, 4 and 8 stages: 32, 16
    and 8 px maps at 64 px), each a 1x1 convolution, BatchNorm and ReLU on the block's output,
    averaged over the image and joined to the final features. The level is the share of the car's
    pixels that are rust, which local detectors averaged over the image measure directly, where the
    last stage's 2x2 map at 64 px sees whole cars and learns their shapes.

    `pooling`: `image` averages every map over the whole image; `car` averages it over the car only
    (the cells weighted by the share of their pixels that are not black background, which is how
    masked images come), so the pooled local features measure the share of the car's pixels that
    are rust, not that share times how much of the picture the car fills; `car_max` also joins each
    local map's maximum over the car (is there any rust at all: what tells mild from none, where the
    average of a few rusty cells is close to a clean car's). Weights saved before this option existed
    read as `image`.

    `stem_stride` 1 runs MobileNetV2's first convolution at the input's full resolution and moves
    its stride to block 1's depthwise convolution (the later maps, and nearly all the cost, are
    unchanged): at 64 px a mild car's rust is a few pixels, which the strided stem sees at half
    resolution through 16 channels.

    `mirror` (eval mode only) averages the logits of the image and of its left-right mirror, the
    one change of view training's augmentation also makes (test-time augmentation): a car's rust
    is no less rust mirrored, and two views of a few rusty pixels decide mild from none more
    steadily than one. Training mode is one pass, so it costs training nothing; inference costs
    twice the passes. Validation (and the fitted temperature) see what inference sees. Weights
    saved before this option existed read as off.
    """

    width: float = 1.0
    size: int = 128
    num_levels: int = 4
    dropout: float = 0.2
    temperature: float = 1.0
    local_features: int = 0
    local_taps: tuple[int, ...] = (3, 6)
    pooling: str = "image"
    stem_stride: int = 2
    mirror: bool = False

    def __post_init__(self) -> None:
        require(0 < self.width <= 4, f"width must be in (0, 4], got {self.width}")
        require(self.size >= 32 and self.size % 32 == 0, f"size must be a multiple of 32, got {self.size}")
        require(self.num_levels >= 2, f"num_levels must be at least 2, got {self.num_levels}")
        require(0 <= self.dropout < 1, f"dropout must be in [0, 1), got {self.dropout}")
        require(self.temperature > 0, f"temperature must be positive, got {self.temperature}")
        require(
            self.pooling in POOLINGS, f"pooling must be one of {', '.join(POOLINGS)}, got {self.pooling!r}"
        )
        require(self.stem_stride in (1, 2), f"stem_stride must be 1 or 2, got {self.stem_stride}")
        require(self.local_features >= 0, f"local_features must be >= 0, got {self.local_features}")
        require(
            len(set(self.local_taps)) == len(self.local_taps) and all(0 <= t <= 17 for t in self.local_taps),
            f"local_taps must be distinct MobileNetV2 block indices 0..17, got {self.local_taps}",
        )


class LevelClassifier(nn.Module):
    """(B, 3, H, W) float in [0, 1] -> (B, num_levels) level logits."""

    def __init__(self, config: ClassifierConfig | None = None) -> None:
        super().__init__()
        from torchvision.models import mobilenet_v2

        self.config = config or ClassifierConfig()
        backbone = mobilenet_v2(weights=None, width_mult=self.config.width)
        self.encoder = backbone.features
        if self.config.stem_stride == 1:
            # The stem convolution at the input's full resolution; block 1's depthwise one halves it
            # instead, so every later map keeps its size (and its cost).
            self.encoder[0][0].stride = (1, 1)
            self.encoder[1].conv[0][0].stride = (2, 2)
            self.encoder[1].use_res_connect = False  # (at widths where it had one) its sides now differ
        self.num_features = int(backbone.last_channel)
        self.taps = nn.ModuleDict()
        if self.config.local_features:
            for index in sorted(self.config.local_taps):
                channels = int(self.encoder[index].out_channels)
                self.taps[str(index)] = nn.Sequential(
                    nn.Conv2d(channels, self.config.local_features, 1, bias=False),
                    nn.BatchNorm2d(self.config.local_features),
                    nn.ReLU(inplace=True),
                )
            per_tap = 2 if self.config.pooling == "car_max" else 1
            self.num_features += len(self.taps) * self.config.local_features * per_tap
        self.dropout = nn.Dropout(self.config.dropout)
        self.head = nn.Linear(self.num_features, self.config.num_levels)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] -> (B, num_features): the pooled penultimate layer."""
        by_car = self.config.pooling in ("car", "car_max")
        car = (images.amax(1, keepdim=True) > 0).to(images.dtype) if by_car else None

        def pool(maps: torch.Tensor, local: bool = False) -> torch.Tensor:
            if car is None:
                return functional.adaptive_avg_pool2d(maps, 1).flatten(1)
            mean, weights = car_pool(maps, car)
            if not (local and self.config.pooling == "car_max"):
                return mean
            # The strongest response on the car: whether any rust is there at all (none vs mild).
            return torch.cat([mean, (maps * (weights > 0)).amax((2, 3))], dim=1)

        x = (images - self.mean) / self.std
        if not self.taps:
            return pool(self.encoder(x))
        pooled = []
        for index, block in enumerate(self.encoder):
            x = block(x)
            if str(index) in self.taps:
                pooled.append(pool(self.taps[str(index)](x), local=True))
        return torch.cat([pool(x), *pooled], dim=1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        logits = self.head(self.dropout(self.features(images)))
        if self.config.mirror and not self.training:
            # Two passes: one of 2B images measured 1.6x slower on the CPU (64 px, batch 64).
            logits = (logits + self.head(self.features(images.flip(3)))) / 2
        return logits if self.config.temperature == 1.0 else logits / self.config.temperature


def level_probabilities(logits: torch.Tensor) -> torch.Tensor:
    """(B, K) level logits -> (B, K) level probabilities (non-negative, summing to 1), float."""
    return functional.softmax(logits.float(), dim=1)


def level_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    *,
    label_smoothing: float = 0.0,
    sample_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean cross-entropy of `(B, K)` level logits against level indices `targets` (B,).

    Label smoothing moves `label_smoothing` of each target's probability evenly over all K levels.
    `sample_weights` (B,) weight each image (class-balanced weights); they are normalised to sum 1.
    """
    per_image = functional.cross_entropy(
        logits.float(), targets, reduction="none", label_smoothing=label_smoothing
    )
    if sample_weights is None:
        return per_image.mean()
    weights = sample_weights.float()
    return (per_image * weights).sum() / weights.sum().clamp_min(1e-12)

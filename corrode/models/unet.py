"""The car segmenter: a U-Net whose encoder is torchvision's MobileNetV2 (the paper, section 3.2).

The paper's model is TensorFlow's segmentation tutorial, so its block numbers are Keras'. Keras block k
is torchvision `features[k + 1]`; the skips are the expansion ReLU outputs of Keras blocks 1, 3, 6 and 13
and the projection of block 16. At 256 px, width 1.0:

    block_1_expand_relu   features[2].conv[0]    96 x 128 x 128
    block_3_expand_relu   features[4].conv[0]   144 x  64 x  64
    block_6_expand_relu   features[7].conv[0]   192 x  32 x  32
    block_13_expand_relu  features[14].conv[0]  576 x  16 x  16
    block_16_project      features[17]          320 x   8 x   8

The decoder is the tutorial's: four pix2pix upsample stages (transposed conv, stride 2, batch norm, ReLU),
each followed by concatenation with the next skip, then a fifth transposed conv to the class logits at
the input resolution.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from corrode.config import require

# torchvision feature indices: the expansion (conv[0]) of these blocks is a skip...
EXPANSION_SKIPS = (2, 4, 7, 14)
# ...and the output of this one (the projection of Keras block 16) is the deepest skip.
LAST_BLOCK = 17
SKIP_NAMES = (
    "block_1_expand_relu",
    "block_3_expand_relu",
    "block_6_expand_relu",
    "block_13_expand_relu",
    "block_16_project",
)
# Inputs are [0, 1] RGB; MobileNetV2's ImageNet weights expect these statistics.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class SegmenterConfig:
    """What builds a `CarSegmenter`; saved in the weights file's metadata.

    `width` is MobileNetV2's width multiplier (1.0 is the paper's; ImageNet weights exist only for it).
    `decoder_channels` are the four upsample stages' widths, deepest first (the tutorial's 512..64).
    `size` is the square side the model is trained and run at; a multiple of 32.
    """

    width: float = 1.0
    decoder_channels: tuple[int, ...] = (512, 256, 128, 64)
    num_classes: int = 2
    size: int = 256

    def __post_init__(self) -> None:
        require(0 < self.width <= 4, f"width must be in (0, 4], got {self.width}")
        require(
            len(self.decoder_channels) == 4 and all(c > 0 for c in self.decoder_channels),
            f"decoder_channels must be four positive widths, got {list(self.decoder_channels)}",
        )
        require(self.num_classes >= 2, f"num_classes must be at least 2, got {self.num_classes}")
        require(
            self.size >= 32 and self.size % 32 == 0,
            f"size must be a multiple of 32 (the encoder halves it five times), got {self.size}",
        )


def upsample(in_channels: int, out_channels: int) -> nn.Sequential:
    """pix2pix upsample: (B, in, H, W) -> (B, out, 2H, 2W)."""
    return nn.Sequential(
        nn.ConvTranspose2d(in_channels, out_channels, 3, stride=2, padding=1, output_padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class CarSegmenter(nn.Module):
    """(B, 3, H, W) float in [0, 1] -> (B, num_classes, H, W) logits; H and W multiples of 32."""

    def __init__(self, config: SegmenterConfig | None = None) -> None:
        super().__init__()
        from torchvision.models import mobilenet_v2

        self.config = config or SegmenterConfig()
        # Only features[0..17] are needed; features[18] (the 1280-channel head) and the classifier go.
        backbone = mobilenet_v2(weights=None, width_mult=self.config.width)
        self.encoder = nn.Sequential(*list(backbone.features)[: LAST_BLOCK + 1])
        skip_channels = [self.encoder[i].conv[0][0].out_channels for i in EXPANSION_SKIPS]
        skip_channels.append(self.encoder[LAST_BLOCK].out_channels)
        self.skip_channels = tuple(skip_channels)

        stages = []
        in_channels = skip_channels[-1]
        for out_channels, skip in zip(
            self.config.decoder_channels, reversed(skip_channels[:-1]), strict=True
        ):
            stages.append(upsample(in_channels, out_channels))
            in_channels = out_channels + skip
        self.decoder = nn.ModuleList(stages)
        self.head = nn.ConvTranspose2d(
            in_channels, self.config.num_classes, 3, stride=2, padding=1, output_padding=1
        )
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def skips(self, images: torch.Tensor) -> list[torch.Tensor]:
        """The five encoder outputs the decoder uses, shallowest first (shapes in the module doc)."""
        x = (images - self.mean) / self.std
        found: list[torch.Tensor] = []
        for index, block in enumerate(self.encoder):
            if index in EXPANSION_SKIPS:
                # Run the block by hand to keep its expansion output (no forward hooks). These are
                # stride-2 blocks, so there is no residual add to reproduce.
                expanded = block.conv[0](x)
                found.append(expanded)
                x = block.conv[1:](expanded)
            else:
                x = block(x)
        found.append(x)
        return found

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        *shallow, x = self.skips(images)
        for stage, skip in zip(self.decoder, reversed(shallow), strict=True):
            x = torch.cat([stage(x), skip], dim=1)
        return self.head(x)

"""The multi-domain CycleGAN of the paper: ResNet generators, discriminators, and the sets holding them.

Images inside these modules are `(B, 3, H, W)` floats in [-1, 1] (tanh range); H and W divisible by 4.
Domain 0 of `levels` is the clean one; every other level is reached from it and mapped back to it.
Generators live in an `nn.ModuleDict` keyed `"<source>_to_<target>"` (or one shared conditional
generator), discriminators in an `nn.ModuleDict` keyed by level, so the number of levels is data.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

GENERATORS = ("separate", "shared")
UPSAMPLES = ("transposed", "resize")
DISCRIMINATORS = ("paper", "patch", "multiscale")
DISCRIMINATOR_NORMS = ("none", "spectral")
RUST_LAYERS = ("free", "palette")
CRITIC_POOLINGS = ("car", "car_max")
PALETTE_COLOURS = 8


@dataclass(frozen=True)
class CycleGanConfig:
    """Architecture of a multi-domain CycleGAN.

    `generator="shared"` is one conditional generator for every translation (conditional instance
    norm on the target level); `attention=True` makes each generator predict a corrosion layer and a
    soft map of where it goes, keeping the input's pixels elsewhere. `upsample="resize"` swaps the
    generator's two transposed convolutions for nearest-neighbour upsampling + 3x3 convolution (same
    parameter count), which does not draw the transposed convolution's checkerboard.
    `discriminator="multiscale"`: two PatchGANs, on the image and on it halved (pix2pixHD), so the
    coarse one judges whole patches of rust; `discriminator_norm="spectral"` puts spectral
    normalisation on every discriminator convolution (Miyato et al., 2018).
    `rust_layer="palette"` (attention, separate generators): the clean -> rust generators paint a layer
    that is a per-pixel mix of `PALETTE_COLOURS` colours of the shipped photo-scanned rust
    (`corrode.synth.textures.rust_palette`) times a brightness in (0, 2), so they can paint rust of any
    shade but not green, purple or paint-coloured speckle; the rust -> clean ones keep a free layer
    (they paint the car's paint back).
    """

    levels: tuple[str, ...] = ("none", "mild", "moderate", "severe")
    base_channels: int = 64
    residual_blocks: int = 9
    generator: str = "separate"
    attention: bool = False
    upsample: str = "transposed"
    discriminator: str = "paper"
    discriminator_channels: int = 64
    discriminator_norm: str = "none"
    rust_layer: str = "free"

    def __post_init__(self) -> None:
        from corrode.errors import ConfigError

        if len(self.levels) < 2 or len(set(self.levels)) != len(self.levels):
            raise ConfigError(f"levels must be two or more distinct names, got {list(self.levels)}")
        if self.generator not in GENERATORS:
            raise ConfigError(f"generator must be one of {', '.join(GENERATORS)}, got {self.generator!r}")
        if self.upsample not in UPSAMPLES:
            raise ConfigError(f"upsample must be one of {', '.join(UPSAMPLES)}, got {self.upsample!r}")
        if self.discriminator not in DISCRIMINATORS:
            raise ConfigError(
                f"discriminator must be one of {', '.join(DISCRIMINATORS)}, got {self.discriminator!r}"
            )
        if self.discriminator_norm not in DISCRIMINATOR_NORMS:
            raise ConfigError(
                f"discriminator_norm must be one of {', '.join(DISCRIMINATOR_NORMS)}, "
                f"got {self.discriminator_norm!r}"
            )
        if self.rust_layer not in RUST_LAYERS:
            raise ConfigError(f"rust_layer must be one of {', '.join(RUST_LAYERS)}, got {self.rust_layer!r}")
        if self.rust_layer == "palette" and (not self.attention or self.generator != "separate"):
            raise ConfigError("rust_layer palette needs attention and separate generators")
        if self.base_channels < 1 or self.discriminator_channels < 1 or self.residual_blocks < 0:
            raise ConfigError("channel counts must be >= 1 and residual_blocks >= 0")

    @property
    def clean(self) -> str:
        return self.levels[0]

    @property
    def rusty(self) -> tuple[str, ...]:
        return self.levels[1:]

    def mappings(self) -> list[tuple[str, str]]:
        """(source, target) of every generator: clean -> each level, then each level -> clean."""
        return [(self.clean, level) for level in self.rusty] + [(level, self.clean) for level in self.rusty]


def mapping_key(source: str, target: str) -> str:
    return f"{source}_to_{target}"


def init_weights(module: nn.Module, std: float = 0.02) -> None:
    """normal(0, 0.02) for convolutions (as the CycleGAN reference), biases 0."""
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.normal_(layer.weight, 0.0, std)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, ConditionalInstanceNorm):
            channels = layer.channels
            nn.init.normal_(layer.style.weight[:, :channels], 1.0, std)
            nn.init.zeros_(layer.style.weight[:, channels:])


class ConditionalInstanceNorm(nn.Module):
    """Instance norm whose scale and shift are looked up per sample from its condition (target level).

    A condition concatenated as one-hot planes would be normalised away by the first instance norm;
    modulating every norm layer keeps it alive through the whole network.
    """

    def __init__(self, channels: int, conditions: int) -> None:
        super().__init__()
        self.channels = channels
        self.norm = nn.InstanceNorm2d(channels, affine=False)
        self.style = nn.Embedding(conditions, 2 * channels)

    def forward(self, x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        scale, shift = self.style(condition).unsqueeze(-1).unsqueeze(-1).chunk(2, dim=1)
        return self.norm(x) * scale + shift


class _Norm(nn.Module):
    """Plain instance norm, or conditional instance norm when the generator is shared."""

    def __init__(self, channels: int, conditions: int) -> None:
        super().__init__()
        self.conditional = conditions > 0
        self.layer: nn.Module = (
            ConditionalInstanceNorm(channels, conditions) if self.conditional else nn.InstanceNorm2d(channels)
        )

    def forward(self, x: torch.Tensor, condition: torch.Tensor | None) -> torch.Tensor:
        return self.layer(x, condition) if self.conditional else self.layer(x)


class _ConvNormReLU(nn.Module):
    def __init__(self, conv: nn.Module, channels: int, conditions: int, pad: int = 0) -> None:
        super().__init__()
        self.pad = nn.ReflectionPad2d(pad) if pad else nn.Identity()
        self.conv = conv
        self.norm = _Norm(channels, conditions)

    def forward(self, x: torch.Tensor, condition: torch.Tensor | None) -> torch.Tensor:
        return torch.relu(self.norm(self.conv(self.pad(x)), condition))


class ResidualBlock(nn.Module):
    def __init__(self, channels: int, conditions: int = 0) -> None:
        super().__init__()
        self.first = _ConvNormReLU(nn.Conv2d(channels, channels, 3), channels, conditions, pad=1)
        self.pad = nn.ReflectionPad2d(1)
        self.conv = nn.Conv2d(channels, channels, 3)
        self.norm = _Norm(channels, conditions)

    def forward(self, x: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        return x + self.norm(self.conv(self.pad(self.first(x, condition))), condition)


def _upsampling_conv(channels_in: int, channels_out: int, kind: str) -> nn.Module:
    """Doubles the size: a stride-1/2 transposed convolution, or nearest upsampling + 3x3 convolution."""
    if kind == "transposed":
        return nn.ConvTranspose2d(channels_in, channels_out, 3, stride=2, padding=1, output_padding=1)
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="nearest"),
        nn.ReflectionPad2d(1),
        nn.Conv2d(channels_in, channels_out, 3),
    )


class ResnetGenerator(nn.Module):
    """The CycleGAN ResNet generator: c7s1-C, d2C, d4C, R4C x blocks, u2C, uC, c7s1-3, tanh.

    `conditions` > 0 swaps every instance norm for a conditional one (shared generator); `attention`
    adds a fourth output channel, a sigmoid map `m`, and returns `m * layer + (1 - m) * input`;
    `upsample="resize"` upsamples by nearest neighbour + convolution instead of transposed convolution.
    `palette` (K, 3) colours in [0, 1] (attention only): the layer is a softmax mix of them times a
    brightness `2 * sigmoid(b)`, from K + 1 more head channels; the map is always the last channel.
    With 64 base channels and 9 blocks (no conditions, no attention) it has 11,378,179 parameters.
    """

    def __init__(
        self,
        base_channels: int = 64,
        residual_blocks: int = 9,
        *,
        conditions: int = 0,
        attention: bool = False,
        upsample: str = "transposed",
        palette: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        if palette is not None and not attention:
            raise ValueError("a palette layer needs an attention generator")
        c = base_channels
        self.attention = attention
        self.palette: torch.Tensor | None
        self.register_buffer("palette", None if palette is None else palette.detach().clone().float())
        outputs = 3 if not attention else 4 if palette is None else len(palette) + 2
        self.stem = _ConvNormReLU(nn.Conv2d(3, c, 7), c, conditions, pad=3)
        self.down = nn.ModuleList(
            [
                _ConvNormReLU(nn.Conv2d(c, 2 * c, 3, stride=2, padding=1), 2 * c, conditions),
                _ConvNormReLU(nn.Conv2d(2 * c, 4 * c, 3, stride=2, padding=1), 4 * c, conditions),
            ]
        )
        self.blocks = nn.ModuleList([ResidualBlock(4 * c, conditions) for _ in range(residual_blocks)])
        self.up = nn.ModuleList(
            [
                _ConvNormReLU(_upsampling_conv(4 * c, 2 * c, upsample), 2 * c, conditions),
                _ConvNormReLU(_upsampling_conv(2 * c, c, upsample), c, conditions),
            ]
        )
        self.head = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(c, outputs, 7))
        init_weights(self)

    def raw(self, x: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        """The last convolution's output: 3 channels; with attention the layer's channels + 1 (the map)."""
        h = self.stem(x, condition)
        for layer in [*self.down, *self.blocks, *self.up]:
            h = layer(h, condition)
        return self.head(h)

    def forward(self, x: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_with_map(x, condition)[0]

    def forward_with_map(
        self, x: torch.Tensor, condition: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The translation and, for an attention generator, its `(B, 1, H, W)` map (else None)."""
        out = self.raw(x, condition)
        if not self.attention:
            return torch.tanh(out), None
        mask = torch.sigmoid(out[:, -1:])
        return mask * self._layer(out[:, :-1]) + (1 - mask) * x, mask

    def _layer(self, out: torch.Tensor) -> torch.Tensor:
        """The painted layer in [-1, 1] from the head's non-map channels."""
        if self.palette is None:
            return torch.tanh(out)
        weights = torch.softmax(out[:, :-1], dim=1)
        colour = torch.einsum("bkhw,kc->bchw", weights, self.palette.to(weights.dtype))
        brightness = 2 * torch.sigmoid(out[:, -1:])
        return (colour * brightness).clamp(0, 1) * 2 - 1

    def encode(self, x: torch.Tensor, condition: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Encoder features for PatchNCE: after the stem, both downsamplings and the middle residual block."""
        h = self.stem(x, condition)
        features = [h]
        for layer in self.down:
            h = layer(h, condition)
            features.append(h)
        for layer in self.blocks[: (len(self.blocks) + 1) // 2]:
            h = layer(h, condition)
        if self.blocks:
            features.append(h)
        return features

    def attention_map(self, x: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        """`(B, 1, H, W)` in [0, 1]: where an attention generator paints (for figures and tests)."""
        if not self.attention:
            raise ValueError("this generator has no attention map")
        return torch.sigmoid(self.raw(x, condition)[:, -1:])


def _discriminator_layers(channels: int, strides: tuple[int, ...]) -> nn.Sequential:
    """4x4 convolutions: the first without norm, the middle ones with instance norm, the last to 1 map."""
    layers: list[nn.Module] = [nn.Conv2d(3, channels, 4, stride=strides[0], padding=1), nn.LeakyReLU(0.2)]
    width = channels
    for stride in strides[1:-1]:
        wider = min(width * 2, channels * 8)
        layers += [
            nn.Conv2d(width, wider, 4, stride=stride, padding=1),
            nn.InstanceNorm2d(wider),
            nn.LeakyReLU(0.2),
        ]
        width = wider
    layers.append(nn.Conv2d(width, 1, 4, stride=strides[-1], padding=1))
    return nn.Sequential(*layers)


PAPER_STRIDES = (2, 2, 2, 2, 2)
PATCH_STRIDES = (2, 2, 2, 1, 1)


class Discriminator(nn.Module):
    """Patch discriminator returning raw scores `(B, 1, h, w)`.

    `kind="paper"`: a stride-2 conv, three stride-2 conv + instance-norm blocks, a final stride-2
    conv (8x8 at 256 px). `kind="patch"`: the 70x70 PatchGAN, strides 2,2,2,1,1 (30x30 at 256 px).
    """

    def __init__(self, kind: str = "paper", channels: int = 64, norm: str = "none") -> None:
        super().__init__()
        strides = {"paper": PAPER_STRIDES, "patch": PATCH_STRIDES}[kind]
        self.layers = _discriminator_layers(channels, strides)
        init_weights(self)
        if norm == "spectral":
            _spectral(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def _spectral(module: nn.Module) -> None:
    from torch.nn.utils.parametrizations import spectral_norm

    for layer in list(module.modules()):
        if isinstance(layer, nn.Conv2d):
            spectral_norm(layer)


class MultiScaleDiscriminator(nn.Module):
    """Two PatchGANs, on the image and on it average-pooled to half size (pix2pixHD, Wang et al. 2018).

    Returns `(B, 1, N)`: both scales' scores flattened and joined, so losses and batch splits treat
    it like one discriminator. Needs images of at least 64 px (the coarse one's norms need 2x2 maps).
    """

    def __init__(self, channels: int = 64, norm: str = "none") -> None:
        super().__init__()
        self.scales = nn.ModuleList([Discriminator("patch", channels, norm) for _ in range(2)])
        self.pool = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fine = self.scales[0](x)
        coarse = self.scales[1](self.pool(x))
        return torch.cat([fine.flatten(2), coarse.flatten(2)], dim=2)


def make_discriminator(kind: str, channels: int, norm: str = "none") -> nn.Module:
    if kind == "multiscale":
        return MultiScaleDiscriminator(channels, norm)
    return Discriminator(kind, channels, norm)


def rust_palette_tensor() -> torch.Tensor:
    """(PALETTE_COLOURS, 3) the shipped rust's colours in [0, 1] (saved with the weights as a buffer)."""
    from corrode.synth.textures import rust_palette

    return torch.tensor(rust_palette(PALETTE_COLOURS), dtype=torch.float32)


class GeneratorSet(nn.Module):
    """Every translation of the model: six separate generators, or one shared conditional one."""

    def __init__(self, config: CycleGanConfig, *, palette: torch.Tensor | None = None) -> None:
        """`palette` (rust_layer palette only): the colours to start from, the shipped rust's when None.
        A loader passes placeholder zeros, which the weights file's own palette replaces: reading
        the textures to compute it costs about half a second."""
        super().__init__()
        self.config = config
        self.translators = nn.ModuleDict()
        self.shared: ResnetGenerator | None = None
        if config.generator == "shared":
            self.shared = ResnetGenerator(
                config.base_channels,
                config.residual_blocks,
                conditions=len(config.levels),
                attention=config.attention,
                upsample=config.upsample,
            )
        else:
            if config.rust_layer != "palette":
                palette = None
            elif palette is None:
                palette = rust_palette_tensor()
            for source, target in config.mappings():
                self.translators[mapping_key(source, target)] = ResnetGenerator(
                    config.base_channels,
                    config.residual_blocks,
                    attention=config.attention,
                    upsample=config.upsample,
                    palette=palette if source == config.clean else None,
                )

    def translate(self, images: torch.Tensor, source: str, target: str) -> torch.Tensor:
        return self.translate_many([(images, source, target)])[0]

    def translate_many(self, jobs: list[tuple[torch.Tensor, str, str]]) -> list[torch.Tensor]:
        """Run several (images, source, target) translations; the shared generator does them in one batch."""
        return [image for image, _ in self.translate_many_with_maps(jobs)]

    def translate_many_with_maps(
        self, jobs: list[tuple[torch.Tensor, str, str]]
    ) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
        """As `translate_many`, each translation with its attention map (None without attention)."""
        for _, source, target in jobs:
            if (source, target) not in self.config.mappings():
                raise KeyError(f"no generator maps {source} to {target}")
        if self.shared is None:
            return [self.translators[mapping_key(s, t)].forward_with_map(images) for images, s, t in jobs]
        batch = torch.cat([images for images, _, _ in jobs])
        condition = torch.cat(
            [
                torch.full(
                    (len(images),), self.config.levels.index(t), dtype=torch.long, device=images.device
                )
                for images, _, t in jobs
            ]
        )
        sizes = [len(images) for images, _, _ in jobs]
        image, attention = self.shared.forward_with_map(batch, condition)
        maps = attention.split(sizes) if attention is not None else [None] * len(jobs)
        return list(zip(image.split(sizes), maps, strict=True))

    def encode(self, images: torch.Tensor, source: str, target: str) -> list[torch.Tensor]:
        """The encoder features of the generator for (source, target) on `images` (see ResnetGenerator)."""
        if (source, target) not in self.config.mappings():
            raise KeyError(f"no generator maps {source} to {target}")
        if self.shared is None:
            return self.translators[mapping_key(source, target)].encode(images)
        condition = torch.full(
            (len(images),), self.config.levels.index(target), dtype=torch.long, device=images.device
        )
        return self.shared.encode(images, condition)

    def forward(
        self,
        clean: torch.Tensor,
        rusty: dict[str, torch.Tensor],
        identity: bool = False,
        cycle_noise: float = 0.0,
        features: bool = False,
    ) -> dict[str, torch.Tensor]:
        """The images one training step needs, for clean batch `a` and a batch `x[L]` per rusty level L.

        Keys: `fake_L` = G[A->L](a), `back_L` = G[L->A](x[L]), `rec_clean_L` = G[L->A](fake_L),
        `rec_L` = G[A->L](back_L); with `identity`, `same_L` = G[A->L](x[L]) and `same_clean_L` =
        G[L->A](a). `cycle_noise` > 0 adds Gaussian noise of that standard deviation to `fake_L`
        and `back_L` before they are translated back, so the round trip cannot lean on a faint
        pattern hidden in the translation (CycleGAN's steganography: Chu et al., 2017; the noise
        defence: Bashkirova et al., 2019). With attention generators, `attention_L` is the map of
        G[A->L](a): where the rust painter paints. With `features`, `nce_in_L_k` and `nce_out_L_k` are
        the k-th encoder features of G[A->L] on `a` and on `fake_L` (PatchNCE, Park et al. 2020).
        """
        a, levels = self.config.clean, list(rusty)
        first = [(clean, a, level) for level in levels] + [(rusty[level], level, a) for level in levels]
        if identity:
            first += [(rusty[level], a, level) for level in levels] + [(clean, level, a) for level in levels]
        with_maps = self.translate_many_with_maps(first)
        outputs = [image for image, _ in with_maps]
        fakes = dict(zip(levels, outputs[: len(levels)], strict=True))
        backs = dict(zip(levels, outputs[len(levels) : 2 * len(levels)], strict=True))

        def noisy(images: torch.Tensor) -> torch.Tensor:
            return images + cycle_noise * torch.randn_like(images) if cycle_noise > 0 else images

        second = [(noisy(fakes[level]), level, a) for level in levels] + [
            (noisy(backs[level]), a, level) for level in levels
        ]
        recs = self.translate_many(second)
        result: dict[str, torch.Tensor] = {}
        for i, level in enumerate(levels):
            result[f"fake_{level}"] = fakes[level]
            result[f"back_{level}"] = backs[level]
            result[f"rec_clean_{level}"] = recs[i]
            result[f"rec_{level}"] = recs[len(levels) + i]
            attention = with_maps[i][1]
            if attention is not None:
                result[f"attention_{level}"] = attention
            if features:
                pairs = zip(self.encode(clean, a, level), self.encode(fakes[level], a, level), strict=True)
                for k, (seen, made) in enumerate(pairs):
                    result[f"nce_in_{level}_{k}"] = seen
                    result[f"nce_out_{level}_{k}"] = made
            if identity:
                result[f"same_{level}"] = outputs[2 * len(levels) + i]
                result[f"same_clean_{level}"] = outputs[3 * len(levels) + i]
        return result


class LevelCritic(nn.Module):
    """Which level an image shows: StarGAN's domain classifier (Choi et al., 2018), as its own network.

    `(B, 3, H, W)` in [-1, 1], background -1 -> `(B, num_levels)` logits. Four convolutions (strides
    2, 2, 1, 2) and LeakyReLU, then the last map averaged over the car's cells only (those not all
    background), so what it measures is the share of the car's surface that looks like rust at each
    level, whatever the car's size in the picture. Trained on real images of every level with their
    labels; the generators are trained to make their translations be read as their target level.

    `pooling="car_max"` also joins each last-map channel's maximum over the car's cells: whether
    there is rust anywhere on the car, which the average of a mildly rusted car's few rusty cells
    barely tells from a clean car's (the level classifier measured the same: corrode.models.classifier).
    """

    def __init__(self, channels: int = 32, num_levels: int = 4, pooling: str = "car") -> None:
        super().__init__()
        if pooling not in CRITIC_POOLINGS:
            raise ValueError(f"critic pooling must be one of {', '.join(CRITIC_POOLINGS)}, got {pooling!r}")
        self.pooling = pooling
        c = channels
        self.layers = nn.Sequential(
            nn.Conv2d(3, c, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(c, 2 * c, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(2 * c, 2 * c, 3, stride=1, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(2 * c, 4 * c, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
        )
        self.head = nn.Linear(4 * c * (2 if pooling == "car_max" else 1), num_levels)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from corrode.models.pooling import car_mask, car_pool

        maps = self.layers(x)
        pooled, weights = car_pool(maps, car_mask(x).to(maps.dtype))
        if self.pooling == "car_max":
            # LeakyReLU maps can be negative: cells off the car are left out of the maximum, not zeroed.
            strongest = maps.masked_fill(weights <= 0, float("-inf")).amax((2, 3))
            pooled = torch.cat([pooled, torch.where(torch.isfinite(strongest), strongest, 0.0)], dim=1)
        return self.head(pooled)


class DiscriminatorSet(nn.Module):
    """One discriminator per level, keyed by level name, and with `level_critic` a `LevelCritic`."""

    def __init__(
        self, config: CycleGanConfig, level_critic: bool = False, critic_pooling: str = "car"
    ) -> None:
        super().__init__()
        self.judges = nn.ModuleDict(
            {
                level: make_discriminator(
                    config.discriminator, config.discriminator_channels, config.discriminator_norm
                )
                for level in config.levels
            }
        )
        self.critic = (
            LevelCritic(config.discriminator_channels, len(config.levels), critic_pooling)
            if level_critic
            else None
        )

    def forward(
        self, images: dict[str, torch.Tensor], classify: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Each level's scores; with `classify`, also the critic's level logits of those images under
        the key `CRITIC_KEY` (one call, so DistributedDataParallel sees every parameter used)."""
        scores = {level: self.judges[level](batch) for level, batch in images.items()}
        if classify is not None:
            if self.critic is None:
                raise ValueError("this discriminator set has no level critic")
            scores[CRITIC_KEY] = self.critic(classify)
        return scores


CRITIC_KEY = "_level_logits"


class MultiDomainCycleGAN(nn.Module):
    """Generators and discriminators of the paper's multi-domain CycleGAN (figure 2)."""

    def __init__(
        self, config: CycleGanConfig, level_critic: bool = False, critic_pooling: str = "car"
    ) -> None:
        super().__init__()
        self.config = config
        self.generators = GeneratorSet(config)
        self.discriminators = DiscriminatorSet(config, level_critic, critic_pooling)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())

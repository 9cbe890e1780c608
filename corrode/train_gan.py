"""`corrode train-gan`: train the multi-domain CycleGAN of the paper on level folders of masked cars.

One step draws one batch per level (each level reshuffled on its own; an epoch is one pass over the
largest), translates clean -> every level and back, and updates the six generators, then the four
discriminators, as DESIGN.md describes. The run folder gets config.json, metrics.csv, loss curves
laid out like the paper's figures 9-11, a sample grid per epoch, model.safetensors (generators only,
kind "gan", enough to rebuild them) and state.pt for an exact `--resume`.
"""

from __future__ import annotations

import math
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from corrode import levels as levels_module
from corrode.config import require, to_dict
from corrode.errors import ConfigError, FileError, UsageError
from corrode.runs import CONFIG, METRICS, STATE, WEIGHTS
from corrode.training import Reporter, Run, as_reporter, open_run

if TYPE_CHECKING:
    import torch

Progress = Callable[[int, int, dict[str, float]], None]

SAMPLES_DIR = "samples"
FIGURE_FILES = ("generator_loss.png", "cycle_loss.png", "discriminator_loss.png", "changed.png")
# A car pixel counts as changed by a translation when a channel moves by more than this (of [-1, 1]).
CHANGED_THRESHOLD = 0.2


IDENTITY_MAPPINGS = ("both", "to-clean")


@dataclass(frozen=True)
class TrainGanConfig:
    """Options of one training run; the defaults are the paper's setup (preset `paper`).

    `identity_weight` is relative to lambda (the reference's 0.5 means 0.5 * lambda).
    `identity_mappings`: `both` (the reference: every generator leaves its target domain alone) or
    `to-clean` (only the rust removers leave clean cars alone; an attention generator asked to keep
    rusty cars unchanged learns an empty attention map and never paints rust).
    `cycle_noise`: standard deviation of Gaussian noise added to translations before they are
    translated back (in [-1, 1] units), against patterns hidden to cheat the cycle loss.
    `ema`: decay of an exponential moving average of the generators' weights (e.g. 0.999; 0 = off;
    ramped up from 0.1 over the first updates, so short runs are not dominated by their start);
    when on, samples and model.safetensors use the averaged generators, which flicker less from
    step to step than the trained ones (Yazici et al., ICLR 2019).
    `decay_epochs`: the learning rate stays at `learning_rate`, then falls linearly to zero over
    the last `decay_epochs` epochs (None: half of `epochs`, the paper's 100 of 200).
    `diffaugment`: comma-separated subset of color,translation,cutout.
    `crop_size`: images are loaded at `image_size` and each step trains on one random
    `crop_size` square per level (the CycleGAN reference's `resize_and_crop`, e.g. 286 -> 256), so
    the networks learn texture at a scale larger than fits whole; 0 trains on the whole image.
    Masks are applied when loading, so an image and its mask always share the crop box.
    `attention_tv` / `attention_sparsity` (attention generators): weights of the total variation and
    of the mean of the rust painters' attention maps, so rust comes in patches and the paint elsewhere
    is left alone. `attention_binary`: weight of the mean of m * (1 - m) over the car, which is 0
    where a map is 0 or 1 and largest at 0.5: rust painted opaque or not at all, not a translucent haze.
    `discriminator_norm`: none or spectral. `r1_weight`: gamma of an R1 penalty on
    the discriminators' real inputs (gamma / 2 * |grad|^2). `nce_weight`: weight of a PatchNCE
    loss between each clean car and its translation in the rust painter's own encoder features
    (Park et al., 2020), 64 car patches per layer; with `cycle_weight` 0 it is CUT's one-sided objective.
    `level_weight`: weight of StarGAN's domain-classification loss (Choi et al., 2018): a level
    critic (`LevelCritic`, trained with the discriminators on the real images of every level and
    their labels) reads each translation, and each generator is trained to have its output read as
    its target level. A patch discriminator alone cannot tell a clean car from a mildly rusted one,
    most of whose patches are clean; the critic sees the share of the whole car. `critic_pooling`
    `car_max` also gives the critic each feature's maximum over the car (is there rust anywhere).
    `critic_batch`: real images per level the critic learns from each step (drawn by samplers of
    their own), beside the step's batch; 0 reads only the step's batch. Measured on its own on the
    64 px study's data (65 mild cars), the critic read held-out real mild cars right 0.33 of the time
    after 2,000 steps at one image per level, 0.46 at four, with a learning rate ten times the GAN's.
    `critic_lr_factor` multiplies the learning rate for the critic's parameters.
    `critic_warmup`: steps of the level critic alone on the real images (as each GAN step trains it)
    before the first GAN step of a run, so the painters are asked for their level from the start by a
    critic that already reads it, not by one that learns it with them; at 64 px a critic step costs
    about 3 % of a GAN step, and a resumed run does not warm up again. `critic_augment`: a DiffAugment
    policy (as `diffaugment`) applied to the real images the critic learns from, never to the
    translations it reads for the generators: "translation" shifts each car by up to 1/8 of the
    image, a prior that how rusty a car is does not depend on where it stands. Measured on its own
    (the 64 px study's 65 mild cars, 2,000 critic steps), it read held-out real mild cars right
    0.60-0.65 of the time from step 1,000 on, against 0.21-0.60 without.
    """

    data: Path
    out: Path = Path("runs/gan")
    masks: Path | None = None
    image_size: int = 256
    crop_size: int = 0
    batch_size: int = 1
    epochs: int = 200
    decay_epochs: int | None = None
    learning_rate: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    base_channels: int = 64
    residual_blocks: int = 9
    generator: str = "separate"
    attention: bool = False
    upsample: str = "transposed"
    discriminator: str = "paper"
    discriminator_channels: int = 64
    gan_loss: str = "lsgan"
    cycle_weight: float = 10.0
    cycle_schedule: str = "constant"
    cycle_weight_final: float | None = None
    identity_weight: float = 0.0
    identity_mappings: str = "both"
    cycle_noise: float = 0.0
    ema: float = 0.0
    pool_size: int = 50
    diffaugment: str = ""
    flip: bool = True
    samples: int = 4
    checkpoint_every: int = 500
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    compile: bool = False
    threads: int = 0
    tensorboard: bool = False
    attention_tv: float = 0.0
    attention_sparsity: float = 0.0
    attention_binary: float = 0.0
    discriminator_norm: str = "none"
    r1_weight: float = 0.0
    nce_weight: float = 0.0
    level_weight: float = 0.0
    critic_pooling: str = "car"
    critic_batch: int = 0
    critic_lr_factor: float = 1.0
    critic_warmup: int = 0
    critic_augment: str = ""
    rust_layer: str = "free"

    def __post_init__(self) -> None:
        from corrode.gan.diffaugment import parse_policy
        from corrode.gan.losses import GAN_LOSSES, SCHEDULES
        from corrode.models.cyclegan import (
            CRITIC_POOLINGS,
            DISCRIMINATOR_NORMS,
            DISCRIMINATORS,
            GENERATORS,
            RUST_LAYERS,
            UPSAMPLES,
        )

        require(
            self.image_size >= 32 and self.image_size % 4 == 0,
            f"image_size must be a multiple of 4 (the generator halves it twice) and >= 32 (the "
            f"discriminators' instance norms need 2x2 maps), got {self.image_size}",
        )
        require(
            self.crop_size == 0 or (32 <= self.crop_size <= self.image_size and self.crop_size % 4 == 0),
            f"crop_size must be 0 (no crop) or a multiple of 4 from 32 up to the load size "
            f"({self.image_size}), got {self.crop_size}",
        )
        require(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        require(self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}")
        require(
            self.decay_epochs is None or 0 <= self.decay_epochs <= self.epochs,
            f"decay_epochs must be between 0 and epochs ({self.epochs}), got {self.decay_epochs}",
        )
        require(self.learning_rate > 0, "learning_rate must be > 0")
        require(self.generator in GENERATORS, f"generator must be one of {', '.join(GENERATORS)}")
        require(self.upsample in UPSAMPLES, f"upsample must be one of {', '.join(UPSAMPLES)}")
        require(
            self.discriminator in DISCRIMINATORS, f"discriminator must be one of {', '.join(DISCRIMINATORS)}"
        )
        require(self.gan_loss in GAN_LOSSES, f"gan_loss must be one of {', '.join(GAN_LOSSES)}")
        require(self.cycle_schedule in SCHEDULES, f"cycle_schedule must be one of {', '.join(SCHEDULES)}")
        require(self.cycle_weight >= 0 and self.identity_weight >= 0, "loss weights must be >= 0")
        require(self.cycle_noise >= 0, f"cycle_noise must be >= 0, got {self.cycle_noise}")
        require(0 <= self.ema < 1, f"ema must be in [0, 1), got {self.ema}")
        require(
            self.identity_mappings in IDENTITY_MAPPINGS,
            f"identity_mappings must be one of {', '.join(IDENTITY_MAPPINGS)}",
        )
        require(
            self.cycle_schedule == "constant" or self.cycle_weight_final is not None,
            f"cycle_schedule {self.cycle_schedule!r} needs cycle_weight_final",
        )
        require(self.pool_size >= 0, "pool_size must be >= 0")
        require(self.samples >= 0 and self.checkpoint_every >= 0, "samples and checkpoint_every must be >= 0")
        require(
            self.base_channels >= 1 and self.residual_blocks >= 0 and self.discriminator_channels >= 1,
            "base_channels and discriminator_channels must be >= 1, residual_blocks >= 0",
        )
        require(
            min(
                self.attention_tv,
                self.attention_sparsity,
                self.attention_binary,
                self.r1_weight,
                self.nce_weight,
                self.level_weight,
            )
            >= 0,
            "attention_tv, attention_sparsity, attention_binary, r1_weight, nce_weight and level_weight "
            "must be >= 0",
        )
        require(
            self.attention
            or (self.attention_tv == 0 and self.attention_sparsity == 0 and self.attention_binary == 0),
            "attention_tv, attention_sparsity and attention_binary need attention generators (attention on)",
        )
        require(self.rust_layer in RUST_LAYERS, f"rust_layer must be one of {', '.join(RUST_LAYERS)}")
        require(self.critic_batch >= 0, f"critic_batch must be >= 0, got {self.critic_batch}")
        require(self.critic_warmup >= 0, f"critic_warmup must be >= 0, got {self.critic_warmup}")
        require(
            self.critic_warmup == 0 or self.level_weight > 0,
            "critic_warmup needs the level critic (level_weight > 0)",
        )
        require(self.critic_lr_factor > 0, f"critic_lr_factor must be > 0, got {self.critic_lr_factor}")
        require(
            self.critic_pooling in CRITIC_POOLINGS,
            f"critic_pooling must be one of {', '.join(CRITIC_POOLINGS)}, got {self.critic_pooling!r}",
        )
        require(
            self.rust_layer == "free" or (self.attention and self.generator == "separate"),
            "rust_layer palette needs attention generators (attention on) and separate generators",
        )
        require(
            self.discriminator_norm in DISCRIMINATOR_NORMS,
            f"discriminator_norm must be one of {', '.join(DISCRIMINATOR_NORMS)}",
        )
        require(
            self.discriminator != "multiscale" or self.image_size >= 64,
            f"the multiscale discriminator needs image_size >= 64, got {self.image_size}",
        )
        try:
            parse_policy(self.diffaugment)
            parse_policy(self.critic_augment)
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc

    def decay_epochs_or_half(self) -> int:
        return self.epochs // 2 if self.decay_epochs is None else self.decay_epochs

    def model_config(self):  # -> CycleGanConfig
        from corrode.models.cyclegan import CycleGanConfig

        return CycleGanConfig(
            levels=levels_module.NAMES,
            base_channels=self.base_channels,
            residual_blocks=self.residual_blocks,
            generator=self.generator,
            attention=self.attention,
            upsample=self.upsample,
            discriminator=self.discriminator,
            discriminator_channels=self.discriminator_channels,
            discriminator_norm=self.discriminator_norm,
            rust_layer=self.rust_layer,
        )


# Overrides on top of the paper defaults. `recommended` is what the 64 px synthetic-car study found
# keeps each car's shape and paint colour while the rust grows from mild to severe (see README).
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},
    "recommended": {
        "attention": True,
        "identity_weight": 0.5,
        "identity_mappings": "to-clean",
        "cycle_weight": 3.0,
        "cycle_noise": 0.1,
        "discriminator": "patch",
        "ema": 0.999,
        "upsample": "resize",
        "rust_layer": "palette",
        "attention_binary": 1.0,
        "level_weight": 1.0,
        "critic_pooling": "car_max",
        "critic_batch": 3,
    },
}


def with_preset(config: TrainGanConfig, name: str) -> TrainGanConfig:
    if name not in PRESETS:
        raise UsageError(f"unknown preset {name!r}: expected one of {', '.join(PRESETS)}")
    return replace(config, **PRESETS[name])


# ---------------------------------------------------------------------------------------------- data


class DomainSampler:
    """Endless batches of indices into one level: each pass a fresh shuffle from its own generator.

    Under DDP every rank draws the same global batch of `batch * world` indices and keeps its slice,
    so ranks see different images and stay in step.
    """

    def __init__(self, size: int, batch: int, seed: int, rank: int = 0, world: int = 1) -> None:
        import torch

        self.size, self.batch, self.rank, self.world = size, batch, rank, world
        self.generator = torch.Generator().manual_seed(seed)
        self.order: list[int] = []
        self.position = 0

    def next(self) -> list[int]:
        import torch

        wanted = self.batch * self.world
        chosen: list[int] = []
        while len(chosen) < wanted:
            if self.position >= len(self.order):
                self.order = torch.randperm(self.size, generator=self.generator).tolist()
                self.position = 0
            take = min(wanted - len(chosen), len(self.order) - self.position)
            chosen += self.order[self.position : self.position + take]
            self.position += take
        return chosen[self.rank * self.batch : (self.rank + 1) * self.batch]

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state(), "order": list(self.order), "position": self.position}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        self.order = [int(i) for i in state["order"]]
        self.position = int(state["position"])


def load_levels(
    data: Path, size: int, masks: Path | None = None, on_skip: Callable[[FileError], None] | None = None
) -> tuple[dict[str, torch.Tensor], dict[str, list[Path]]]:
    """Every image of every level, masked and resized, as `(N, 3, S, S)` uint8 tensors per level.

    Reading everything first names every unreadable image before any training time is spent: each
    goes to `on_skip` and is left out (the trainers' policy), or, without `on_skip`, all of them are
    listed in one DatasetError.
    """
    import torch

    from corrode.datasets import DatasetError, ImageListDataset, find_levels
    from corrode.leveldata import resolve_level_data

    resolved = resolve_level_data(data, masks)
    data, masks_root = resolved.root, resolved.masks_root
    found = find_levels(data)
    tensors: dict[str, torch.Tensor] = {}
    problems: list[str] = []
    for level, paths in found.items():
        if level not in levels_module.NAMES:
            continue
        dataset = ImageListDataset(paths, size, masks_root=masks_root)
        images = []
        for index in range(len(dataset)):
            try:
                images.append((dataset[index] * 255).round().to(torch.uint8))
            except FileError as exc:
                if on_skip is None:
                    problems.append(str(exc))
                else:
                    on_skip(exc)
        if images:
            tensors[level] = torch.stack(images)
    if problems:
        more = "\n".join(f"  {line}" for line in problems)
        raise DatasetError(f"{data}: {len(problems)} unreadable image(s):\n{more}")
    for level in levels_module.NAMES:
        if level not in tensors:
            raise DatasetError(f"{data / level}: no readable images")
    return tensors, found


# ------------------------------------------------------------------------------------------ trainer


def ema_with_warmup(decay: float) -> Callable[[list[torch.Tensor], list[torch.Tensor], Any], None]:
    """An `AveragedModel` update whose decay ramps up as `min(decay, (1 + n) / (10 + n))` after n
    updates, so the average follows the last ~10 % of a short run instead of its first weights."""
    import torch

    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], updates: Any) -> None:

        n = float(updates)
        torch._foreach_lerp_(averaged, current, 1.0 - min(decay, (1.0 + n) / (10.0 + n)))

    return update


def random_crop(images: torch.Tensor, size: int) -> torch.Tensor:
    """One random `size` x `size` window of `(B, C, H, W)` images, the same box for the whole batch,
    drawn from torch's global RNG (saved in the training state, so a resumed run draws the same)."""
    import torch

    height, width = images.shape[-2:]
    top = int(torch.randint(0, height - size + 1, ()))
    left = int(torch.randint(0, width - size + 1, ()))
    return images[..., top : top + size, left : left + size]


def changed_share(translated: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """Share of car pixels (not the black background) where some channel moved by more than
    `CHANGED_THRESHOLD`; `(B, 3, H, W)` images in [-1, 1]. Tracks whether a generator paints rust."""
    from corrode.models.pooling import car_mask

    car = car_mask(original)
    moved = (translated.float() - original.float()).abs().amax(1, keepdim=True) > CHANGED_THRESHOLD
    return (moved & car).sum() / car.sum().clamp(min=1)


class GanTrainer:
    """The model, its optimizers, pools and samplers, and one training step. Owns no files."""

    def __init__(self, config: TrainGanConfig, images: dict[str, torch.Tensor], context) -> None:
        import torch

        from corrode.device import grad_scaler, prepare, resolve_precision
        from corrode.gan.diffaugment import parse_policy
        from corrode.gan.image_pool import ImagePool
        from corrode.models.cyclegan import MultiDomainCycleGAN

        self.config = config
        self.context = context
        self.device = context.device
        self.dtype = resolve_precision(config.precision, self.device)
        self.model_config = config.model_config()
        self.levels = self.model_config.levels
        self.clean, self.rusty = self.model_config.clean, self.model_config.rusty
        self.images = images
        self.policy = parse_policy(config.diffaugment)
        self.critic_policy = parse_policy(config.critic_augment)

        torch.manual_seed(config.seed)  # identical initial weights on every rank
        self.model = prepare(
            MultiDomainCycleGAN(
                self.model_config, level_critic=config.level_weight > 0, critic_pooling=config.critic_pooling
            ),
            self.device,
        )
        self.generators = self.model.generators
        self.discriminators = self.model.discriminators
        self.generator_pass: torch.nn.Module = self.generators
        self.discriminator_pass: torch.nn.Module = self.discriminators
        if context.enabled:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.generator_pass = DistributedDataParallel(self.generators, device_ids=ids)
            self.discriminator_pass = DistributedDataParallel(self.discriminators, device_ids=ids)
        if config.compile:
            self.generator_pass = torch.compile(self.generator_pass)
            self.discriminator_pass = torch.compile(self.discriminator_pass)

        betas = (config.beta1, config.beta2)
        self.optimizer_g = torch.optim.Adam(
            self.generators.parameters(), lr=config.learning_rate, betas=betas
        )
        critic = self.discriminators.critic
        if critic is not None and config.critic_lr_factor != 1.0:
            # (One group otherwise, so runs saved before the option existed resume as they were.)
            in_critic = {id(p) for p in critic.parameters()}
            groups: Any = [
                {"params": [p for p in self.discriminators.parameters() if id(p) not in in_critic]},
                {"params": list(critic.parameters()), "lr_factor": config.critic_lr_factor},
            ]
        else:
            groups = self.discriminators.parameters()
        self.optimizer_d = torch.optim.Adam(groups, lr=config.learning_rate, betas=betas)
        self.averaged: torch.optim.swa_utils.AveragedModel | None = None
        if config.ema > 0:
            from torch.optim.swa_utils import AveragedModel

            self.averaged = AveragedModel(
                self.generators, multi_avg_fn=ema_with_warmup(config.ema), use_buffers=True
            )
        self.scaler_g = grad_scaler(self.device, self.dtype)
        self.scaler_d = grad_scaler(self.device, self.dtype)

        rank, world = context.rank, context.world_size
        self.pools = {
            level: ImagePool(config.pool_size, seed=config.seed * 7919 + 101 * rank + i)
            for i, level in enumerate(self.levels)
        }
        self.samplers = {
            level: DomainSampler(len(images[level]), config.batch_size, config.seed + 31 * i, rank, world)
            for i, level in enumerate(self.levels)
        }
        self.critic_samplers = {
            level: DomainSampler(
                len(images[level]), config.critic_batch, config.seed + 31 * i + 17, rank, world
            )
            for i, level in enumerate(self.levels)
            if config.critic_batch and config.level_weight > 0
        }
        largest = max(len(images[level]) for level in self.levels)
        self.steps_per_epoch = math.ceil(largest / (config.batch_size * world))
        self.total_steps = self.steps_per_epoch * config.epochs
        self.step = 0
        torch.manual_seed(config.seed + 1 + rank)  # flips and DiffAugment differ between ranks

    # --- schedule
    def learning_rate(self, step: int) -> float:
        from corrode.gan.losses import learning_rate_factor

        decay = self.steps_per_epoch * self.config.decay_epochs_or_half()
        return self.config.learning_rate * learning_rate_factor(step, self.total_steps, decay)

    def cycle_weight(self, step: int) -> float:
        from corrode.gan.losses import cycle_weight

        c = self.config
        return cycle_weight(
            step, self.total_steps, start=c.cycle_weight, end=c.cycle_weight_final, schedule=c.cycle_schedule
        )

    # --- data
    def _batch(self, level: str, samplers: dict[str, DomainSampler] | None = None) -> torch.Tensor:
        import torch

        from corrode.device import to_device

        indices = (self.samplers if samplers is None else samplers)[level].next()
        batch = self.images[level][indices]
        if self.config.crop_size:
            batch = random_crop(batch, self.config.crop_size)
        batch = batch.float() / 127.5 - 1.0
        if self.config.flip:
            flips = torch.rand(len(indices)) < 0.5
            batch[flips] = batch[flips].flip(-1)
        return to_device(batch, self.device)

    def _augment(self, images: torch.Tensor) -> torch.Tensor:
        from corrode.gan.diffaugment import diff_augment

        return diff_augment(images, self.policy) if self.policy else images

    def _autocast(self):
        from corrode.device import autocast

        return autocast(self.device, self.dtype)

    def _level_loss(self, logits: torch.Tensor, names: list[str], batch: int) -> torch.Tensor:
        """Cross-entropy of the critic's logits for images batched `batch` at a time, in the order of
        the level `names` they should be read as."""
        import torch

        indices = [self.levels.index(name) for name in names]
        targets = torch.tensor(indices, device=self.device).repeat_interleave(batch)
        return torch.nn.functional.cross_entropy(logits.float(), targets)

    def _attention_terms(
        self, attention: torch.Tensor, car: torch.Tensor
    ) -> dict[str, tuple[float, torch.Tensor]]:
        """name -> (weight, value) of the attention regularisers on one painter's `(B, 1, H, W)` maps:
        total variation, the mean over the car, and the mean of m(1 - m) over the car."""
        from corrode.gan.losses import total_variation

        c, attention = self.config, attention.float()
        inside = car.to(attention.dtype)
        pixels = inside.sum().clamp(min=1)
        return {
            "tv": (c.attention_tv, total_variation(attention)),
            "mean": (c.attention_sparsity, (attention * inside).sum() / pixels),
            "binary": (c.attention_binary, (attention * (1 - attention) * inside).sum() / pixels),
        }

    # --- the step
    def train_step(self) -> dict[str, float]:
        import torch

        from corrode.gan.losses import (
            adversarial_loss,
            cycle_loss,
            identity_loss,
            patch_nce,
        )
        from corrode.models.cyclegan import mapping_key
        from corrode.models.pooling import car_mask

        c, clean, rusty = self.config, self.clean, self.rusty
        lam = self.cycle_weight(self.step)
        lr = self.learning_rate(self.step)
        for optimizer in (self.optimizer_g, self.optimizer_d):
            for group in optimizer.param_groups:
                group["lr"] = lr * group.get("lr_factor", 1.0)
        if self.step == 0 and c.critic_warmup > 0:
            self.warm_up_critic(c.critic_warmup)
        a = self._batch(clean)
        x = {level: self._batch(level) for level in rusty}
        use_identity = c.identity_weight > 0
        losses: dict[str, torch.Tensor] = {}

        # Generators: the discriminators are judges only, so they are called unwrapped (no DDP sync).
        self.discriminators.requires_grad_(False)
        with self._autocast():
            out = self.generator_pass(a, x, use_identity, c.cycle_noise, c.nce_weight > 0)
            judged = self.discriminators(
                {
                    **{level: self._augment(out[f"fake_{level}"]) for level in rusty},
                    clean: self._augment(torch.cat([out[f"back_{level}"] for level in rusty])),
                }
            )
        back_scores = judged[clean].split(len(a))
        car = car_mask(a)
        total_g = torch.zeros((), device=self.device)
        if c.level_weight > 0:
            # The translations as the critic reads them: each painter's to its level, removers' to clean.
            read_as = [out[f"fake_{level}"] for level in rusty] + [out[f"back_{level}"] for level in rusty]
            with self._autocast():
                logits = self.discriminators.critic(torch.cat(read_as))
            losses["level_gen"] = self._level_loss(logits, [*rusty, *[clean] * len(rusty)], len(a))
            total_g = total_g + c.level_weight * losses["level_gen"]
        for i, level in enumerate(rusty):
            forward = adversarial_loss(judged[level], True, c.gan_loss)
            backward = adversarial_loss(back_scores[i], True, c.gan_loss)
            cycle_clean = cycle_loss(out[f"rec_clean_{level}"], a)
            cycle_level = cycle_loss(out[f"rec_{level}"], x[level])
            losses[f"gen_{mapping_key(clean, level)}"] = forward
            losses[f"gen_{mapping_key(level, clean)}"] = backward
            losses[f"cycle_{clean}_{level}_{clean}"] = cycle_clean
            losses[f"cycle_{level}_{clean}_{level}"] = cycle_level
            total_g = total_g + forward + backward + lam * (cycle_clean + cycle_level)
            if use_identity:
                same = identity_loss(out[f"same_{level}"], x[level])
                same_clean = identity_loss(out[f"same_clean_{level}"], a)
                losses[f"identity_{mapping_key(clean, level)}"] = same
                losses[f"identity_{mapping_key(level, clean)}"] = same_clean
                weighted = same_clean if c.identity_mappings == "to-clean" else same + same_clean
                total_g = total_g + c.identity_weight * lam * weighted
            if c.attention_tv > 0 or c.attention_sparsity > 0 or c.attention_binary > 0:
                for name, (weight, term) in self._attention_terms(out[f"attention_{level}"], car).items():
                    losses[f"attention_{name}_{level}"] = term
                    total_g = total_g + weight * term
            if c.nce_weight > 0:
                layers = [key for key in out if key.startswith(f"nce_out_{level}_")]
                nce = sum(
                    patch_nce(
                        out[key],
                        out[key.replace("nce_out", "nce_in", 1)],
                        where=torch.nn.functional.interpolate(car.float(), size=out[key].shape[-2:]) > 0.5,
                    )
                    for key in layers
                ) / len(layers)
                losses[f"nce_{level}"] = nce
                total_g = total_g + c.nce_weight * nce
        with torch.no_grad():  # how much of each car the rust painters change: 0 means they paint nothing
            for level in rusty:
                losses[f"changed_{mapping_key(clean, level)}"] = changed_share(out[f"fake_{level}"], a)
        self.optimizer_g.zero_grad(set_to_none=True)
        self.scaler_g.scale(total_g).backward()
        self.scaler_g.step(self.optimizer_g)
        self.scaler_g.update()
        if self.averaged is not None:
            self.averaged.update_parameters(self.generators)
        losses["gen_total"] = total_g.detach()

        self._train_discriminators(out, a, x, losses)

        self.step += 1
        from corrode.distributed import all_reduce_mean

        values = {
            name: float(all_reduce_mean(value.detach().float(), self.context))
            for name, value in losses.items()
        }
        values["lambda"] = lam
        values["lr"] = lr
        return values

    def warm_up_critic(self, steps: int) -> float:
        """`steps` updates of the level critic alone, each on the real images a GAN step would give it
        (the step's batch and `critic_batch` more per level), through the discriminators' optimizer;
        its gradients are averaged over ranks. Returns the last step's loss."""
        import torch

        critic, c = self.discriminators.critic, self.config
        if critic is None:
            raise ValueError("no level critic to warm up (level_weight is 0)")
        parameters = list(critic.parameters())
        loss = torch.zeros((), device=self.device)
        for _ in range(steps):
            reads = self._critic_reads({level: self._batch(level) for level in self.levels})
            with self._autocast():
                logits = critic(reads)
            loss = c.level_weight * self._level_loss(
                logits, list(self.levels), len(reads) // len(self.levels)
            )
            self.optimizer_d.zero_grad(set_to_none=True)
            self.scaler_d.scale(loss).backward()
            if self.context.enabled:
                import torch.distributed as dist

                for p in parameters:
                    if p.grad is not None:
                        dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
                        p.grad /= self.context.world_size
            self.scaler_d.step(self.optimizer_d)
            self.scaler_d.update()
        return float(loss.detach())

    def _train_discriminators(
        self, out: dict[str, torch.Tensor], a: torch.Tensor, x: dict[str, torch.Tensor], losses: dict
    ) -> None:
        """One step of the discriminators (and the level critic) on this step's real images and the
        generators' pooled fakes; their losses go into `losses`."""
        import torch

        from corrode.gan.losses import adversarial_loss, r1_penalty

        c, clean, rusty = self.config, self.clean, self.rusty
        # Discriminators: real vs pooled fakes; D_clean sees the three back-translations, each weighted
        # 1/3, so it is trained as hard as the others.
        self.discriminators.requires_grad_(True)
        pooled = {level: self.pools[level].query(out[f"fake_{level}"].detach()) for level in rusty}
        pooled_back = [self.pools[clean].query(out[f"back_{level}"].detach()) for level in rusty]
        real = {clean: a, **x}
        if c.r1_weight > 0:
            real = {level: images.detach().requires_grad_(True) for level, images in real.items()}
        with self._autocast():
            inputs = {
                level: self._augment(torch.cat([real[level], pooled[level].to(x[level].dtype)]))
                for level in rusty
            }
            inputs[clean] = self._augment(torch.cat([real[clean], *[b.to(a.dtype) for b in pooled_back]]))
            classify = self._critic_reads(real) if c.level_weight > 0 else None
            scores = self.discriminator_pass(inputs, classify)
        total_d = torch.zeros((), device=self.device)
        if classify is not None:
            from corrode.models.cyclegan import CRITIC_KEY

            per_level = len(classify) // len(self.levels)
            losses["level_disc"] = self._level_loss(scores.pop(CRITIC_KEY), list(self.levels), per_level)
            total_d = total_d + c.level_weight * losses["level_disc"]
        for level in self.levels:
            real_scores, *fakes = scores[level].split(len(a))
            fake_loss = sum(adversarial_loss(f, False, c.gan_loss) for f in fakes) / len(fakes)
            loss = 0.5 * (adversarial_loss(real_scores, True, c.gan_loss) + fake_loss)
            losses[f"disc_{level}"] = loss
            total_d = total_d + loss
            if c.r1_weight > 0:
                losses[f"r1_{level}"] = r1_penalty(real_scores, real[level])
                total_d = total_d + 0.5 * c.r1_weight * losses[f"r1_{level}"]
        self.optimizer_d.zero_grad(set_to_none=True)
        self.scaler_d.scale(total_d).backward()
        self.scaler_d.step(self.optimizer_d)
        self.scaler_d.update()
        losses["disc_total"] = total_d.detach()

    def _critic_reads(self, real: dict[str, torch.Tensor]) -> torch.Tensor:
        """The real images the level critic learns from this step, level by level: the step's own and,
        with `critic_batch`, the critic's own draw of each level after them; `critic_augment` applied."""
        import torch

        from corrode.gan.diffaugment import diff_augment

        if not self.critic_samplers:
            reads = torch.cat([real[level] for level in self.levels])
        else:
            reads = torch.cat(
                [torch.cat([real[level], self._batch(level, self.critic_samplers)]) for level in self.levels]
            )
        return diff_augment(reads, self.critic_policy) if self.critic_policy else reads

    @property
    def exported(self) -> torch.nn.Module:
        """The generators to sample from and to save for rendering: the averaged ones when `ema` is on."""
        return self.generators if self.averaged is None else self.averaged.module

    # --- samples
    def sample_rows(self, clean_images: torch.Tensor) -> list[list[Any]]:
        """Per clean image: input, its translation to each level, and each cycle back (uint8 HWC)."""
        import torch

        from corrode.images import to_array

        generators = self.exported
        a = clean_images.to(self.device).float() / 127.5 - 1.0
        rows: list[list[Any]] = [[to_array((image + 1) / 2)] for image in a.cpu()]
        with torch.no_grad(), self._autocast():
            fakes = {level: generators.translate(a, self.clean, level).float() for level in self.rusty}
            cycles = {
                level: generators.translate(fakes[level], level, self.clean).float() for level in self.rusty
            }
        for group in (fakes, cycles):
            for level in self.rusty:
                for row, image in zip(rows, group[level].cpu(), strict=True):
                    row.append(to_array(((image + 1) / 2).clamp(0, 1)))
        return rows

    # --- state for resume
    def _rank_state(self) -> dict[str, Any]:
        from corrode.checkpoint import rng_state

        return {"pools": {k: p.state_dict() for k, p in self.pools.items()}, "rng": rng_state()}

    def state_dict(self) -> dict[str, Any]:
        """Everything an exact resume needs; call on every rank (gathers per-rank pools and RNG)."""
        from corrode.distributed import gather_to_main

        ranks = gather_to_main(self._rank_state(), self.context)
        return {
            "step": self.step,
            "generators": self.generators.state_dict(),
            "discriminators": self.discriminators.state_dict(),
            "averaged": self.averaged.state_dict() if self.averaged is not None else {},
            "optimizer_g": self.optimizer_g.state_dict(),
            "optimizer_d": self.optimizer_d.state_dict(),
            "scaler_g": self.scaler_g.state_dict(),
            "scaler_d": self.scaler_d.state_dict(),
            "samplers": {k: s.state_dict() for k, s in self.samplers.items()},
            "critic_samplers": {k: s.state_dict() for k, s in self.critic_samplers.items()},
            "ranks": ranks,
        }

    def load_state_dict(self, state: dict[str, Any], path: Path) -> None:
        from corrode.checkpoint import CheckpointError, load_weights, set_rng_state

        try:
            load_weights(self.generators, state["generators"], path)
            load_weights(self.discriminators, state["discriminators"], path)
            if self.averaged is not None:
                self.averaged.load_state_dict(state["averaged"])
            self.optimizer_g.load_state_dict(state["optimizer_g"])
            self.optimizer_d.load_state_dict(state["optimizer_d"])
            self.scaler_g.load_state_dict(state["scaler_g"])
            self.scaler_d.load_state_dict(state["scaler_d"])
            for level, sampler in self.samplers.items():
                sampler.load_state_dict(state["samplers"][level])
            for level, sampler in self.critic_samplers.items():
                sampler.load_state_dict(state["critic_samplers"][level])
            ranks = state["ranks"]
            mine = ranks[self.context.rank % len(ranks)]
            for level, pool in self.pools.items():
                pool.load_state_dict(mine["pools"][level], self.device)
            set_rng_state(mine["rng"])
            self.step = int(state["step"])
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise CheckpointError(
                path, f"training state is incomplete or from another version ({exc})"
            ) from exc


# --------------------------------------------------------------------------------------- run folder


def gan_model_metadata(trainer: GanTrainer) -> dict[str, Any]:
    return {
        "model": to_dict(trainer.model_config),
        "image_size": trainer.config.image_size,
        "crop_size": trainer.config.crop_size,
        "step": trainer.step,
        "epoch": trainer.step // trainer.steps_per_epoch,
    }


def write_loss_figures(out: Path, levels: tuple[str, ...], smooth: int = 25) -> list[Path]:
    """Figures 9, 10, 11 of the paper from metrics.csv: generator, cycle and discriminator losses,
    and the share of car pixels each clean -> level generator changes (0 throughout: it paints nothing)."""
    from corrode.plots import plot_panels
    from corrode.runs import MetricsLog

    rows = MetricsLog(out / METRICS).rows()
    if not rows:
        return []
    steps = [float(r["step"]) for r in rows]
    clean, rusty = levels[0], levels[1:]

    def series(column: str) -> tuple[list[float], list[float]]:
        pairs = [
            (s, float(r[column])) for s, r in zip(steps, rows, strict=True) if r.get(column) not in (None, "")
        ]
        return [p[0] for p in pairs], [p[1] for p in pairs]

    window = max(1, min(smooth, len(rows) // 5))
    mapping_order = [(clean, level) for level in rusty] + [(level, clean) for level in rusty]
    generator = {f"{s} -> {t}": {"adversarial": series(f"gen_{s}_to_{t}")} for s, t in mapping_order}
    if f"identity_{clean}_to_{rusty[0]}" in rows[0]:
        for s, t in mapping_order:
            generator[f"{s} -> {t}"]["identity"] = series(f"identity_{s}_to_{t}")
    cycle_order = [(clean, level, clean) for level in rusty] + [(level, clean, level) for level in rusty]
    cycle = {" -> ".join(c): {"L1": series("cycle_" + "_".join(c))} for c in cycle_order}
    discriminator = {f"D {level}": {"loss": series(f"disc_{level}")} for level in levels}
    changed = {
        f"{clean} -> {level}": {"changed": series(f"changed_{clean}_to_{level}")}
        for level in rusty
        if f"changed_{clean}_to_{level}" in rows[0]
    }
    figures = [
        plot_panels(
            generator, out / FIGURE_FILES[0], title="Generator loss vs. steps (paper fig. 9)", smooth=window
        ),
        plot_panels(
            cycle,
            out / FIGURE_FILES[1],
            title="Cycle-consistency loss vs. steps (paper fig. 10)",
            smooth=window,
        ),
        plot_panels(
            discriminator,
            out / FIGURE_FILES[2],
            title="Discriminator loss vs. steps (paper fig. 11)",
            smooth=window,
        ),
    ]
    if changed:
        figures.append(
            plot_panels(
                changed,
                out / FIGURE_FILES[3],
                title=f"Share of car pixels changed (> {CHANGED_THRESHOLD} of [-1, 1]) vs. steps",
                smooth=window,
            )
        )
    return figures


def train_gan(
    config: TrainGanConfig,
    progress: Reporter | Callable[[int, int, dict[str, float]], None] | None = None,
    *,
    resume: Path | None = None,
    log: Callable[[str], None] | None = None,
) -> Path:
    """Train a run, or resume the run folder `resume`; returns the run folder.

    `progress` is a Reporter, or a callable `(step, total, losses)` called after every step. SIGINT /
    SIGTERM (or a KeyboardInterrupt raised by that callable) stop after the current step with a
    checkpoint that `resume` continues from exactly, raising `Interrupted`.
    """
    from corrode import distributed

    reporter = as_reporter(progress, log)
    with distributed.session(config.device) as context:
        run = open_run(config, kind="train-gan", context=context, reporter=reporter, resume=resume)
        with run:
            return _GanRun(run).fit()


class _GanRun:
    """The run-folder side of GAN training: checkpoints, sample grids, figures, the step loop."""

    def __init__(self, run: Run) -> None:
        self.run, self.config = run, run.config
        images, _ = load_levels(
            Path(self.config.data), self.config.image_size, self.config.masks, run.reporter.skip
        )
        self.trainer = GanTrainer(self.config, images, run.context)
        if run.state is not None:
            self.trainer.load_state_dict(run.state, run.dir / STATE)
            if run.is_main:
                run.metrics.truncate_after("step", self.trainer.step)
        self.sample_images = images[self.trainer.clean][: self.config.samples]

    def checkpoint(self) -> None:
        """Weights, then state (the metrics rows are already logged, one per step)."""
        trainer, run = self.trainer, self.run
        state = trainer.state_dict()  # every rank takes part (gathers per-rank pools and RNG)
        run.save_weights(run.dir / WEIGHTS, trainer.exported, kind="gan", config=gan_model_metadata(trainer))
        run.save_state(state)

    def end_of_epoch(self, epoch: int) -> None:
        from corrode.grids import contact_sheet
        from corrode.images import write_image

        trainer, run = self.trainer, self.run
        if run.is_main and len(self.sample_images):
            labels = [f"{trainer.clean} (input)", *trainer.rusty, *[f"via {lv}" for lv in trainer.rusty]]
            sheet = contact_sheet(
                trainer.sample_rows(self.sample_images),
                column_labels=labels,
                cell=max(self.config.image_size, 112),
            )
            run.write(run.dir / SAMPLES_DIR / f"epoch_{epoch:03d}.png", lambda path: write_image(path, sheet))
            if run.tensorboard is not None:
                run.tensorboard.image("samples", sheet, trainer.step)
        if run.is_main:
            run.write(run.dir / FIGURE_FILES[0], lambda _: write_loss_figures(run.dir, trainer.levels))
        self.checkpoint()

    def fit(self) -> Path:
        from corrode import distributed

        trainer, run, config = self.trainer, self.run, self.config
        if not run.resumed:
            # From here on state.pt always holds a whole step, so a kill at any moment leaves a run
            # that --resume continues (a fresh start would refuse the folder once it holds metrics).
            run.save_state(trainer.state_dict())
        started = time.perf_counter()
        while trainer.step < trainer.total_steps:
            values = trainer.train_step()
            step, epoch = trainer.step, (trainer.step - 1) // trainer.steps_per_epoch + 1
            run.log({"step": step, "epoch": epoch, **values, "seconds": time.perf_counter() - started}, step)
            try:
                run.reporter.step(step, trainer.total_steps, values)
            except KeyboardInterrupt:  # between steps the state is whole: stop as on SIGINT
                run.signals.request(signal.SIGINT)
            if step % trainer.steps_per_epoch == 0:
                self.end_of_epoch(epoch)
                checkpointed = True
            else:
                checkpointed = bool(config.checkpoint_every and step % config.checkpoint_every == 0)
                if checkpointed:
                    self.checkpoint()
            if step < trainer.total_steps and run.should_stop():
                if not checkpointed:
                    self.checkpoint()
                raise run.interrupted(f"after step {step}")
        distributed.barrier(run.context)
        return run.dir


def load_run_config(run: Path) -> TrainGanConfig:
    from corrode.config import load_config

    return load_config(TrainGanConfig, Path(run) / CONFIG)


__all__ = ["PRESETS", "TrainGanConfig", "load_run_config", "train_gan", "with_preset"]

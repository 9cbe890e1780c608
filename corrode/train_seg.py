"""`corrode train-seg`: train the car segmenter (U-Net, MobileNetV2 encoder) on image + mask pairs.

The paper's recipe (section 4): Adam at 1e-3, reduce-on-plateau, 50 epochs, two-class cross-entropy.
Run folder: config.json, model.safetensors (last), best.safetensors (best validation Dice), state.pt
(resume), metrics.csv and curves.png (loss, pixel accuracy, Dice and IoU per epoch, like figure 8).
Under `torchrun --nproc-per-node N` it trains with DistributedDataParallel; only rank 0 writes files.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from corrode import runs
from corrode.config import require, to_dict
from corrode.errors import ConfigError, FileError, UsageError
from corrode.models.encoder_weights import load_encoder_weights
from corrode.training import Reporter, Run, as_reporter, open_run, seed_everything

if TYPE_CHECKING:
    import torch
    from rich.progress import Progress
    from torch import nn

    from corrode.datasets import Pair
    from corrode.distributed import DistContext
    from corrode.models.unet import SegmenterConfig

CURVES = "curves.png"
# What metrics.csv holds per split (train_*, val_*).
MEASURES = ("loss", "accuracy", "dice", "iou")
STATE_KEYS = ("model", "optimizer", "scheduler", "epoch", "best_dice", "best_epoch", "rng", "model_config")


@dataclass(frozen=True)
class TrainSegConfig:
    """Everything a segmentation run depends on; saved as the run's config.json.

    `plateau_factor` is Keras's ReduceLROnPlateau `factor` (new lr = lr x factor): the paper reduces
    "on the plateau by a factor of 5%", read here as factor 0.05; `plateau_patience` is Keras's default.
    `encoder_weights`: `auto` (ImageNet from torchvision's cache when present, else random), `imagenet`
    (the cache, downloading if missing), `none` (random), or a .pth / .safetensors state-dict file.
    """

    data: Path | None = None
    out: Path = Path("runs/seg")
    size: int = 256
    epochs: int = 50
    batch_size: int = 8
    learning_rate: float = 1e-3
    plateau_factor: float = 0.05
    plateau_patience: int = 10
    val_fraction: float = 0.1
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    workers: int = 0
    width: float = 1.0
    decoder_channels: tuple[int, ...] = (512, 256, 128, 64)
    encoder_weights: str = "auto"
    augment: bool = True
    threads: int = 0
    compile: bool = False
    tensorboard: bool = False

    def __post_init__(self) -> None:
        require(self.epochs >= 1, f"epochs must be at least 1, got {self.epochs}")
        require(self.batch_size >= 1, f"batch_size must be at least 1, got {self.batch_size}")
        require(self.learning_rate > 0, f"learning_rate must be positive, got {self.learning_rate}")
        require(0 < self.plateau_factor < 1, f"plateau_factor must be in (0, 1), got {self.plateau_factor}")
        require(self.plateau_patience >= 0, f"plateau_patience must be >= 0, got {self.plateau_patience}")
        require(0 <= self.val_fraction < 1, f"val_fraction must be in [0, 1), got {self.val_fraction}")
        require(self.workers >= 0, f"workers must be >= 0, got {self.workers}")
        require(self.threads >= 0, f"threads must be >= 0 (0: torch's default), got {self.threads}")
        self.model_config()  # validates width, decoder widths and size

    def model_config(self) -> SegmenterConfig:
        from corrode.models.unet import SegmenterConfig

        return SegmenterConfig(
            width=self.width, decoder_channels=tuple(self.decoder_channels), size=self.size
        )


# --- data --------------------------------------------------------------------------------------------


def check_pairs(pairs: list[Pair]) -> tuple[list[Pair], list[FileError]]:
    """Pairs whose image and mask decode and agree in size; a FileError for each one that fails.

    Every pixel is decoded once here (about one epoch's reading): a header check passes a file cut
    short in its pixel data, which would then stop training in the middle of an epoch.
    """
    from corrode.images import checked_size

    good: list[Pair] = []
    bad: list[FileError] = []
    for pair in pairs:
        try:
            image = checked_size(pair.image)
            mask = checked_size(pair.mask)
        except FileError as exc:
            bad.append(exc)
            continue
        if image != mask:
            bad.append(
                FileError(pair.mask, f"mask is {mask[0]}x{mask[1]} but its image is {image[0]}x{image[1]}")
            )
            continue
        good.append(pair)
    return good, bad


def car_of(stem: str) -> str:
    """The car a file shows: Carvana names its 16 views `<car id>_<01..16>`; other stems are their own car."""
    head, _, tail = stem.rpartition("_")
    return head if head and tail.isdigit() else stem


def split_indices(stems: list[str], val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(train, validation) indices from a seeded shuffle of whole cars, at least one of each when possible.

    All views of one car land on the same side, so validation measures cars the model has not seen.
    """
    import torch

    groups: dict[str, list[int]] = {}
    for index, stem in enumerate(stems):
        groups.setdefault(car_of(stem), []).append(index)
    if len(groups) < 2:
        groups = {str(index): [index] for index in range(len(stems))}
    count = len(stems)
    wanted = round(count * val_fraction)
    wanted = min(max(wanted, 1), count - 1) if val_fraction > 0 and count >= 2 else 0
    keys = sorted(groups)
    val: list[int] = []
    for position in torch.randperm(len(keys), generator=torch.Generator().manual_seed(seed)).tolist():
        members = groups[keys[position]]
        if len(val) >= wanted or len(val) + len(members) >= count:
            continue
        val += members
    chosen = set(val)
    return [i for i in range(count) if i not in chosen], sorted(val)


def epoch_order(indices: list[int], seed: int, epoch: int, context: DistContext) -> list[int]:
    """This rank's shuffled share of `indices` for `epoch`; every rank gets the same count (DDP needs it)."""
    import torch

    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    order = [indices[i] for i in torch.randperm(len(indices), generator=generator).tolist()]
    remainder = len(order) % context.world_size
    if remainder:
        order += order[: context.world_size - remainder]
    return order[context.rank :: context.world_size]


# --- metrics -----------------------------------------------------------------------------------------


def batch_totals(logits: torch.Tensor, targets: torch.Tensor, loss: torch.Tensor) -> torch.Tensor:
    """[loss x pixels, pixels, correct, true pos, false pos, false neg] for one batch, class 1 = car."""
    import torch

    predicted = logits.argmax(1)
    car, guess = targets == 1, predicted == 1
    pixels = targets.numel()
    return torch.stack(
        [
            loss.detach().double() * pixels,
            torch.tensor(float(pixels), dtype=torch.float64, device=targets.device),
            (predicted == targets).sum().double(),
            (car & guess).sum().double(),
            (~car & guess).sum().double(),
            (car & ~guess).sum().double(),
        ]
    )


def summarize(totals: torch.Tensor) -> dict[str, float]:
    """Loss, pixel accuracy, Dice and IoU of the car class from summed `batch_totals`."""
    loss_sum, pixels, correct, true_pos, false_pos, false_neg = (float(v) for v in totals)
    if pixels == 0:
        return {name: float("nan") for name in MEASURES}
    union = true_pos + false_pos + false_neg
    # No car in the targets and none predicted is a perfect score, not 0/0.
    return {
        "loss": loss_sum / pixels,
        "accuracy": correct / pixels,
        "dice": 2 * true_pos / (2 * true_pos + false_pos + false_neg) if union else 1.0,
        "iou": true_pos / union if union else 1.0,
    }


def write_curves(rows: list[dict[str, str]], out: Path) -> Path:
    """The paper's figure 8 (loss and accuracy vs epoch), with Dice and IoU beside them."""
    from corrode.plots import plot_panels

    epochs = [int(row["epoch"]) for row in rows]
    titles = {
        "loss": "cross-entropy loss",
        "accuracy": "pixel accuracy",
        "dice": "Dice (car)",
        "iou": "IoU (car)",
    }
    panels: dict[str, dict[str, tuple[list[int], list[float]]]] = {}
    for measure, title in titles.items():
        series = {}
        for split, label in (("train", "train"), ("val", "validation")):
            values = [row.get(f"{split}_{measure}", "") for row in rows]
            if all(v not in ("", None) for v in values):
                series[label] = (epochs, [float(v) for v in values])
        panels[title] = series
    return plot_panels(panels, out, xlabel="epoch", title="segmentation training")


# --- training ----------------------------------------------------------------------------------------


def _run_batches(
    model: nn.Module,
    batches: Any,
    *,
    train: bool,
    optimizer: torch.optim.Optimizer | None,
    scaler: Any,
    augmentation: nn.Module | None,
    device: torch.device,
    dtype: torch.dtype | None,
    totals: torch.Tensor,
) -> Iterator[torch.Tensor]:
    """Run `batches` of (images, masks); yields the running totals after each batch."""
    import torch
    import torch.nn.functional as F

    from corrode.augmentation import augment_batch
    from corrode.device import autocast, to_device

    model.train(train)
    context = torch.enable_grad() if train else torch.inference_mode()
    with context:
        for images, masks in batches:
            images, masks = to_device(images, device), to_device(masks, device)
            if augmentation is not None:
                images, masks = augment_batch(images, masks, augmentation)
            targets = (masks[:, 0] > 0.5).long()
            with autocast(device, dtype):
                logits = model(images)
            loss = F.cross_entropy(logits.float(), targets)
            if train:
                assert optimizer is not None
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            totals = totals + batch_totals(logits, targets, loss)
            yield totals


def train_seg(
    config: TrainSegConfig,
    progress: Progress | Reporter | None = None,
    log: Callable[[str], None] | None = None,
    *,
    resume: Path | None = None,
) -> Path:
    """Train a segmentation run, or resume the run folder `resume`; returns the run folder.

    `progress` is a Reporter (or a started Rich Progress), `log` receives the notes and the per-epoch
    lines. SIGINT / SIGTERM stop after the current batch with a state that `resume` continues from
    (raising `Interrupted`). Under torchrun only rank 0 writes files, logs and shows progress.
    """
    from corrode import distributed

    if config.data is None:
        raise ConfigError("no DATA folder given (a Carvana-layout or images/ + masks/ folder)")
    reporter = as_reporter(progress, log)
    with distributed.session(config.device) as context:
        run = open_run(
            config, kind="train-seg", context=context, reporter=reporter, resume=resume, required=STATE_KEYS
        )
        with run:
            return _SegTraining(run).fit()


class _SegTraining:
    """The segmenter's part of a run: build, one epoch, validate, its state."""

    def __init__(self, run: Run) -> None:
        import torch
        from torch.utils.data import DataLoader, Subset

        from corrode import checkpoint
        from corrode.augmentation import PipelineConfig, build_pipeline
        from corrode.datasets import DatasetError, PairDataset, find_pairs
        from corrode.device import grad_scaler, prepare, resolve_precision
        from corrode.distributed import wrap
        from corrode.models.unet import CarSegmenter

        self.run, self.config, self.context = run, run.config, run.context
        config, state = self.config, run.state
        self.model_config = config.model_config()
        pairs, bad = check_pairs(find_pairs(config.data))
        for error in bad:
            run.reporter.skip(error)
        if not pairs:
            raise DatasetError(f"{config.data}: no usable image + mask pairs")
        self.train_indices, self.val_indices = split_indices(
            [p.stem for p in pairs], config.val_fraction, config.seed
        )
        self.dataset = PairDataset(pairs, config.size)
        self.device = device = self.context.device
        self.dtype = resolve_precision(config.precision, device)

        seed_everything(config.seed)
        model = CarSegmenter(self.model_config)
        if state is None:
            run.note(load_encoder_weights(model, config.encoder_weights))
        else:
            checkpoint.load_weights(model, state["model"], run.dir / runs.STATE)
        self.model = prepare(model, device)
        self.network = wrap(self.model, self.context, compile=config.compile)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.learning_rate)
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.optimizer, mode="min", factor=config.plateau_factor, patience=config.plateau_patience
        )
        self.scaler = grad_scaler(device, self.dtype)
        self.epoch, self.batch, self.best_dice, self.best_epoch = 0, 0, -1.0, 0
        self.totals = torch.zeros(6, dtype=torch.float64, device=device)
        self.rng: dict[str, Any] | None = None
        if state is not None:
            self.load_state_dict(state)
        # Online augmentation from `corrode augment`'s random preset (flip, resized crop, affine, jitter).
        self.augmentation = (
            build_pipeline(PipelineConfig(size=config.size)).to(device) if config.augment else None
        )
        self._loader_types = (DataLoader, Subset)
        run.note(
            f"{len(pairs)} pairs: {len(self.train_indices)} train, {len(self.val_indices)} validation; "
            f"{config.size} px on {device}"
            + (f" x {self.context.world_size} processes" if self.context.enabled else "")
        )

    # --- state
    def state_dict(self) -> dict[str, Any]:
        from corrode import checkpoint
        from corrode.distributed import gather_to_main

        return {
            "model": checkpoint.unwrap(self.model).state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "epoch": self.epoch,
            "batch": self.batch,
            "totals": self.totals.cpu(),
            "best_dice": self.best_dice,
            "best_epoch": self.best_epoch,
            "rng": checkpoint.rng_state(),
            "ranks": gather_to_main({"rng": checkpoint.rng_state()}, self.context),
            "model_config": to_dict(self.model_config),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.epoch, self.best_dice, self.best_epoch = (
            int(state["epoch"]),
            float(state["best_dice"]),
            int(state["best_epoch"]),
        )
        self.batch = int(state.get("batch", 0))
        if self.batch:
            self.totals = state["totals"].to(self.device)
            ranks = state.get("ranks") or [{"rng": state["rng"]}]
            self.rng = ranks[self.context.rank % len(ranks)]["rng"]
        if self.epoch >= self.config.epochs:
            raise UsageError(
                f"{self.run.dir}: already trained {self.epoch} epochs; "
                f"pass --epochs above {self.epoch} to train more"
            )
        where = f"epoch {self.epoch}" + (f" and {self.batch} batches" if self.batch else "")
        self.run.note(f"resuming {self.run.dir} after {where} of {self.config.epochs}")

    def _loader(self, indices: list[int], *, train: bool = False, skip: int = 0) -> Any:
        DataLoader, Subset = self._loader_types
        batch_size = self.config.batch_size
        return DataLoader(
            Subset(self.dataset, indices[skip * batch_size :]),
            batch_size=batch_size,
            shuffle=False,
            num_workers=self.config.workers,
            pin_memory=self.device.type == "cuda",
            # A last batch of one image would leave BatchNorm one value per channel at the deepest
            # level of small inputs; the shuffle drops a different image each epoch.
            drop_last=train and len(indices) % batch_size == 1 and len(indices) > 1,
        )

    # --- one epoch
    def train_epoch(self) -> dict[str, float]:
        """The rest of epoch `self.epoch` (from batch `self.batch`); raises Interrupted on a signal."""
        from corrode import checkpoint, distributed

        config, run = self.config, self.run
        if self.batch == 0:
            # Seeding per epoch (and rank) makes a resumed run draw the same augmentations as a straight one.
            seed_everything(config.seed * 1_000_003 + self.epoch * 1_009 + self.context.rank)
            self.totals = self.totals.zero_()
        order = epoch_order(self.train_indices, config.seed, self.epoch, self.context)
        loader = self._loader(order, train=True, skip=self.batch)
        batches = iter(loader)
        if self.rng is not None:  # mid-epoch resume: the RNGs as they were after the last batch done
            checkpoint.set_rng_state(self.rng)
            self.rng = None
        title = f"epoch {self.epoch + 1}/{config.epochs}"
        run.reporter.start("train", self.batch + len(loader), title)
        run.reporter.advance("train", completed=self.batch, description=title)
        steps = _run_batches(
            self.network,
            batches,
            train=True,
            optimizer=self.optimizer,
            scaler=self.scaler,
            augmentation=self.augmentation,
            device=self.device,
            dtype=self.dtype,
            totals=self.totals,
        )
        remaining = len(loader)
        for totals in steps:
            self.totals, self.batch, remaining = totals, self.batch + 1, remaining - 1
            run.reporter.advance("train")
            if remaining and run.should_stop():
                state = self.state_dict()
                run.save_state(state)
                raise run.interrupted(f"in epoch {self.epoch + 1} after batch {self.batch}")
        return summarize(distributed.all_reduce_mean(self.totals, self.context))

    def validate(self) -> dict[str, float] | None:
        import torch

        from corrode import distributed

        if not self.val_indices:
            return None
        loader = self._loader(distributed.shard(self.val_indices, self.context))
        self.run.reporter.start("validate", len(loader), "validate")
        totals = torch.zeros(6, dtype=torch.float64, device=self.device)
        for running in _run_batches(
            self.model,  # no gradients: the plain module, so ranks need not stay in step here
            loader,
            train=False,
            optimizer=None,
            scaler=None,
            augmentation=None,
            device=self.device,
            dtype=self.dtype,
            totals=totals,
        ):
            totals = running
            self.run.reporter.advance("validate")
        # Sums, not means: ranks may hold different numbers of validation images.
        return summarize(distributed.all_reduce_mean(totals, self.context) * self.context.world_size)

    # --- the loop
    def fit(self) -> Path:
        from corrode import distributed

        config, run = self.config, self.run
        if run.resumed:
            if run.is_main:
                run.metrics.truncate_after("epoch", self.epoch)
        else:
            # From here on state.pt always holds a whole step, so a kill at any moment leaves a run
            # that --resume continues exactly.
            run.save_state(self.state_dict())
        while self.epoch < config.epochs:
            started = time.perf_counter()
            train_summary = self.train_epoch()
            row: dict[str, object] = {"epoch": self.epoch + 1, "lr": self.optimizer.param_groups[0]["lr"]}
            row.update({f"train_{k}": v for k, v in train_summary.items()})
            val_summary = self.validate()
            if val_summary is not None:
                row.update({f"val_{k}": v for k, v in val_summary.items()})
            watched = val_summary or train_summary
            self.scheduler.step(watched["loss"])
            improved = watched["dice"] > self.best_dice
            if improved:
                self.best_dice, self.best_epoch = watched["dice"], self.epoch + 1
            row["seconds"] = round(time.perf_counter() - started, 2)
            self.epoch, self.batch = self.epoch + 1, 0
            self._save(row, improved)
            run.note(_epoch_line(self.epoch, config.epochs, train_summary, val_summary, row))
            if self.epoch < config.epochs and run.should_stop():
                raise run.interrupted(f"after epoch {self.epoch}")
        distributed.barrier(self.context)
        run.note(
            f"best {'validation' if self.val_indices else 'train'} Dice {self.best_dice:.4f} "
            f"at epoch {self.best_epoch}; run in {run.dir}"
        )
        return run.dir

    def _save(self, row: dict[str, object], improved: bool) -> None:
        """Weights, then the metrics row (and curves), then the state."""
        run, saved_config = self.run, to_dict(self.model_config)
        state = self.state_dict()  # every rank takes part (gathers per-rank RNG)
        run.save_weights(run.dir / runs.WEIGHTS, self.model, kind="seg", config=saved_config)
        if improved:
            run.save_weights(run.dir / runs.BEST_WEIGHTS, self.model, kind="seg", config=saved_config)
        run.log(row, self.epoch)
        run.write(run.dir / CURVES, lambda path: write_curves(run.metrics.rows(), path))
        run.save_state(state)


def _epoch_line(
    epoch: int,
    epochs: int,
    train: dict[str, float],
    val: dict[str, float] | None,
    row: dict[str, object],
) -> str:
    def part(name: str, values: dict[str, float]) -> str:
        return (
            f"{name} loss {values['loss']:.4f} acc {values['accuracy']:.4f} "
            f"Dice {values['dice']:.4f} IoU {values['iou']:.4f}"
        )

    line = f"epoch {epoch}/{epochs}  {part('train', train)}"
    if val is not None:
        line += f" | {part('val', val)}"
    return line + f" | lr {float(row['lr']):.2g} | {row['seconds']} s"

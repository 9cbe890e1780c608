"""`corrode train-seg`: train the car segmenter (U-Net, MobileNetV2 encoder) on image + mask pairs.

The paper's recipe (section 4): Adam at 1e-3, reduce-on-plateau, 50 epochs, two-class cross-entropy.
Run folder: config.json, model.safetensors (last), best.safetensors (best validation Dice), state.pt
(resume), metrics.csv and curves.png (loss, pixel accuracy, Dice and IoU per epoch, like figure 8).
Under `torchrun --nproc-per-node N` it trains with DistributedDataParallel; only rank 0 writes files.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from corrode.config import require, to_dict
from corrode.errors import ConfigError, FileError, UsageError
from corrode.models.encoder_weights import load_encoder_weights
from corrode.models.unet import SegmenterConfig

if TYPE_CHECKING:
    import torch
    from rich.progress import Progress
    from torch import nn

    from corrode.datasets import Pair
    from corrode.distributed import DistContext

CURVES = "curves.png"
ENCODER_SOURCES = ("auto", "imagenet", "none")
# Columns of metrics.csv, in order.
SPLITS = ("train", "val")
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
    resume: Path | None = None

    def __post_init__(self) -> None:
        require(self.epochs >= 1, f"epochs must be at least 1, got {self.epochs}")
        require(self.batch_size >= 1, f"batch_size must be at least 1, got {self.batch_size}")
        require(self.learning_rate > 0, f"learning_rate must be positive, got {self.learning_rate}")
        require(0 < self.plateau_factor < 1, f"plateau_factor must be in (0, 1), got {self.plateau_factor}")
        require(self.plateau_patience >= 0, f"plateau_patience must be >= 0, got {self.plateau_patience}")
        require(0 <= self.val_fraction < 1, f"val_fraction must be in [0, 1), got {self.val_fraction}")
        require(self.workers >= 0, f"workers must be >= 0, got {self.workers}")
        self.model_config()  # validates width, decoder widths and size

    def model_config(self) -> SegmenterConfig:
        return SegmenterConfig(
            width=self.width, decoder_channels=tuple(self.decoder_channels), size=self.size
        )


# --- data --------------------------------------------------------------------------------------------


def check_pairs(pairs: list[Pair]) -> tuple[list[Pair], list[FileError]]:
    """Pairs whose image and mask headers read and agree in size; a FileError for each one that fails.

    Reads headers only, so a data set of thousands is checked in seconds before training starts.
    """
    from corrode.images import image_size

    good: list[Pair] = []
    bad: list[FileError] = []
    for pair in pairs:
        try:
            image = image_size(pair.image)
            mask = image_size(pair.mask)
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


def _seed_everything(seed: int) -> None:
    import random

    import numpy as np
    import torch

    digest = hashlib.sha256(str(seed).encode()).digest()
    value = int.from_bytes(digest[:4], "little")
    random.seed(value)
    np.random.seed(value)
    torch.manual_seed(value)


def _run_epoch(
    model: nn.Module,
    loader: Any,
    *,
    train: bool,
    optimizer: torch.optim.Optimizer | None,
    scaler: Any,
    augmentation: nn.Module | None,
    device: torch.device,
    dtype: torch.dtype | None,
    totals: torch.Tensor,
    on_batch: Callable[[torch.Tensor], None],
) -> torch.Tensor:
    import torch
    import torch.nn.functional as F

    from corrode.augmentation import augment_batch
    from corrode.device import autocast, to_device

    model.train(train)
    context = torch.enable_grad() if train else torch.inference_mode()
    with context:
        for images, masks in loader:
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
            on_batch(totals)
    return totals


def train_seg(
    config: TrainSegConfig,
    progress: Progress | None = None,
    log: Callable[[str], None] | None = None,
) -> Path:
    """Train (or resume) a segmentation run; returns the run folder.

    `progress` is an optional Rich Progress (already started) for the batch loops; `log` receives the
    notes and the per-epoch lines. Under torchrun only rank 0 writes files, logs and shows progress.
    """
    from corrode import distributed

    context = distributed.setup(config.device)
    try:
        return _train(
            config, context, progress if context.is_main else None, log if context.is_main else None
        )
    finally:
        distributed.teardown(context)


def _train(
    config: TrainSegConfig,
    context: DistContext,
    progress: Progress | None,
    log: Callable[[str], None] | None,
) -> Path:
    import torch
    from torch.utils.data import DataLoader, Subset

    from corrode import checkpoint, distributed, runs
    from corrode.augmentation import PipelineConfig, build_pipeline
    from corrode.config import save_config
    from corrode.datasets import DatasetError, PairDataset, find_pairs
    from corrode.device import grad_scaler, prepare, resolve_precision
    from corrode.models.unet import CarSegmenter

    say = log or (lambda line: None)
    run_dir = Path(config.resume) if config.resume is not None else Path(config.out)
    if config.resume is not None:
        config = dataclasses.replace(config, out=run_dir)
    if config.data is None:
        raise ConfigError("no DATA folder given (a Carvana-layout or images/ + masks/ folder)")
    model_config = config.model_config()

    state = runs.open_run(
        run_dir,
        resume=config.resume is not None,
        model_config=to_dict(model_config),
        kind="train-seg",
        required=STATE_KEYS,
    )

    pairs, bad = check_pairs(find_pairs(config.data))
    for error in bad:
        say(f"skipped {error}")
    if not pairs:
        raise DatasetError(f"{config.data}: no usable image + mask pairs")
    train_indices, val_indices = split_indices([p.stem for p in pairs], config.val_fraction, config.seed)
    dataset = PairDataset(pairs, config.size)
    device = context.device
    dtype = resolve_precision(config.precision, device)

    _seed_everything(config.seed)
    model = CarSegmenter(model_config)
    if state is None:
        say(load_encoder_weights(model, config.encoder_weights))
    else:
        checkpoint.load_weights(model, state["model"], run_dir / runs.STATE)
    model = prepare(model, device)
    network: nn.Module = model
    if context.enabled:
        network = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=config.plateau_factor, patience=config.plateau_patience
    )
    scaler = grad_scaler(device, dtype)
    start_epoch, best_dice, best_epoch = 0, -1.0, 0
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch, best_dice, best_epoch = (
            int(state["epoch"]),
            float(state["best_dice"]),
            int(state["best_epoch"]),
        )
        if start_epoch >= config.epochs:
            raise UsageError(
                f"{run_dir}: already trained {start_epoch} epochs; "
                f"pass --epochs above {start_epoch} to train more"
            )
        say(f"resuming {run_dir} after epoch {start_epoch} of {config.epochs}")
    # Online augmentation from `corrode augment`'s random preset (flip, resized crop, affine, jitter).
    augmentation = build_pipeline(PipelineConfig(size=config.size)).to(device) if config.augment else None

    metrics = runs.MetricsLog(run_dir / runs.METRICS) if context.is_main else None
    if context.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        # `resume` is how this process started, not part of the run: a saved config starts fresh.
        save_config(dataclasses.replace(config, resume=None), run_dir / runs.CONFIG)
        assert metrics is not None
        if state is not None:
            metrics.truncate_after("epoch", start_epoch)
    say(
        f"{len(pairs)} pairs: {len(train_indices)} train, {len(val_indices)} validation; "
        f"{config.size} px on {device}" + (f" x {context.world_size} processes" if context.enabled else "")
    )

    def save_state(epoch: int) -> None:
        if context.is_main:
            checkpoint.save_state(
                run_dir / runs.STATE,
                {
                    "model": checkpoint.unwrap(model).state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "epoch": epoch,
                    "best_dice": best_dice,
                    "best_epoch": best_epoch,
                    "rng": checkpoint.rng_state(),
                    "model_config": to_dict(model_config),
                },
            )

    def loader(indices: list[int], *, train: bool = False) -> DataLoader:
        return DataLoader(
            Subset(dataset, indices),
            batch_size=config.batch_size,
            shuffle=False,
            num_workers=config.workers,
            pin_memory=device.type == "cuda",
            # A last batch of one image would leave BatchNorm one value per channel at the deepest
            # level of small inputs; the shuffle drops a different image each epoch.
            drop_last=train and len(indices) % config.batch_size == 1 and len(indices) > 1,
        )

    if state is None:
        # From here on state.pt always holds the last finished epoch (atomically replaced), so a Ctrl-C
        # or even a kill at any moment leaves a run that --resume continues exactly.
        save_state(0)
    val_share = distributed.shard(val_indices, context)
    train_task = progress.add_task("train", total=None) if progress is not None else None
    val_task = progress.add_task("validate", total=None, visible=bool(val_indices)) if progress else None
    zeros = torch.zeros(6, dtype=torch.float64, device=device)
    epoch = start_epoch
    try:
        for epoch in range(start_epoch, config.epochs):
            started = time.perf_counter()
            # Seeding per epoch (and rank) makes a resumed run draw the same augmentations as a straight one.
            _seed_everything(config.seed * 1_000_003 + epoch * 1_009 + context.rank)
            order = epoch_order(train_indices, config.seed, epoch, context)
            train_loader = loader(order, train=True)
            if progress is not None:
                progress.reset(
                    train_task, total=len(train_loader), description=f"epoch {epoch + 1}/{config.epochs}"
                )
            totals = _run_epoch(
                network,
                train_loader,
                train=True,
                optimizer=optimizer,
                scaler=scaler,
                augmentation=augmentation,
                device=device,
                dtype=dtype,
                totals=zeros,
                on_batch=lambda _: progress.advance(train_task) if progress is not None else None,
            )
            row: dict[str, object] = {"epoch": epoch + 1, "lr": optimizer.param_groups[0]["lr"]}
            train_summary = summarize(distributed.all_reduce_mean(totals, context))
            row.update({f"train_{k}": v for k, v in train_summary.items()})
            val_summary: dict[str, float] | None = None
            if val_indices:
                val_loader = loader(val_share)
                if progress is not None:
                    progress.reset(val_task, total=len(val_loader))
                totals = _run_epoch(
                    model,  # no gradients: the plain module, so ranks need not stay in step here
                    val_loader,
                    train=False,
                    optimizer=None,
                    scaler=None,
                    augmentation=None,
                    device=device,
                    dtype=dtype,
                    totals=zeros,
                    on_batch=lambda _: progress.advance(val_task) if progress is not None else None,
                )
                # Sums, not means: ranks may hold different numbers of validation images.
                totals = distributed.all_reduce_mean(totals, context) * context.world_size
                val_summary = summarize(totals)
                row.update({f"val_{k}": v for k, v in val_summary.items()})
            watched = val_summary or train_summary
            scheduler.step(watched["loss"])
            improved = watched["dice"] > best_dice
            if improved:
                best_dice, best_epoch = watched["dice"], epoch + 1
            row["seconds"] = round(time.perf_counter() - started, 2)
            if context.is_main:
                assert metrics is not None
                checkpoint.save_model(run_dir / runs.WEIGHTS, model, kind="seg", config=to_dict(model_config))
                if improved:
                    checkpoint.save_model(
                        run_dir / runs.BEST_WEIGHTS, model, kind="seg", config=to_dict(model_config)
                    )
                # The state goes last: a kill before it leaves a row that resume truncates and redoes.
                metrics.append(row)
                write_curves(metrics.rows(), run_dir / CURVES)
                save_state(epoch + 1)
            say(_epoch_line(epoch + 1, config.epochs, train_summary, val_summary, row))
    except KeyboardInterrupt:
        # Nothing to write: the state of the last finished epoch is on disk, and a half-trained epoch
        # saved as if finished would make the resumed run differ from a straight one.
        say(
            f"interrupted in epoch {epoch + 1}: "
            f"`corrode train-seg --resume {run_dir}` continues after epoch {epoch}"
        )
        raise
    finally:
        if progress is not None:
            progress.remove_task(train_task)
            progress.remove_task(val_task)
    distributed.barrier(context)
    say(
        f"best {'validation' if val_indices else 'train'} Dice {best_dice:.4f} "
        f"at epoch {best_epoch}; run in {run_dir}"
    )
    return run_dir


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

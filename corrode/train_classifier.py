"""`corrode train-classifier`: train the corrosion-level classifier on masked images in level folders.

Data: `DATA/none/ mild/ moderate/ severe/` (or a `corrode synth` folder, whose `levels/` is used),
masked with `DATA_masks/<level>/<stem>.png` when that folder exists (background black, as the GAN
sees them; without masks the images are taken as already masked). The model scores the four levels
with a softmax head (see corrode.models.classifier for why not an ordinal one); the data are
unbalanced, so training draws images class-balanced (or weights the loss); the targets can be
smoothed (off by default: it cost accuracy on synth). After every epoch BatchNorm is recalibrated,
the validation split measured and a softmax temperature fitted on it (saved in the weights files).

Run folder: config.json, model.safetensors (last), best.safetensors (best validation macro-F1),
state.pt (resume), split.json (which files validate), metrics.csv (loss, accuracy, macro-F1, MAE in
levels, expected calibration error after and before temperature scaling, the temperature, per-level
recall and the confusion matrix per epoch), curves.png and confusion.png.
Under `torchrun --nproc-per-node N` it trains with DistributedDataParallel; only rank 0 writes files.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from corrode import levels, runs
from corrode.config import require, to_dict
from corrode.errors import ConfigError, UsageError
from corrode.images import atomic_write_text
from corrode.leveldata import LevelImages, read_level_images, resolve_level_data
from corrode.training import Reporter, Run, as_reporter, open_run, seed_everything

if TYPE_CHECKING:
    import torch
    from rich.progress import Progress

    from corrode.distributed import DistContext
    from corrode.models.classifier import ClassifierConfig

CURVES = "curves.png"
CONFUSION = "confusion.png"
SPLIT = "split.json"
BALANCES = ("sampler", "weights", "none")
# Calibration error bins (Guo et al. 2017 use 15).
CALIBRATION_BINS = 15
# Training images whose statistics BatchNorm is recalibrated on before each validation: 256 (16
# batches of 16) cost a fifth of the epoch where all 960 of a 1,200-image set cost a third.
RECALIBRATION_IMAGES = 256


@dataclass(frozen=True)
class TrainClassifierConfig:
    """Everything a classifier run depends on; saved as the run's config.json.

    `ema_decay` (0: off) validates and saves an exponential moving average of the weights (decay per
    step) in place of the last step's: at lr 1e-2 the last step's none/mild boundary swings from
    epoch to epoch, and the average smooths it.

    `balance`: `sampler` draws each epoch's images with probability inversely proportional to their
    level's count (every level seen equally often), `weights` keeps the natural draw and weights the
    loss instead, `none` does neither. `encoder_weights` as in train-seg: `auto` (ImageNet weights
    from torchvision's cache when present, else random), `imagenet`, `none`, or a weights file.
    """

    data: Path | None = None
    out: Path = Path("runs/classifier")
    masks: Path | None = None
    size: int = 128
    width: float = 1.0
    # Measured on `corrode synth` at 64 px, width 0.5, from scratch: batch 16 at 5e-3 without dropout or
    # smoothing reached 0.90 held-out accuracy in 18 epochs where batch 32 at 1e-3 was still near chance;
    # local features (64 channels from blocks 3 and 6) took it to 0.94 (mild recall 0.77 -> 0.90) for
    # 15% more time. No augmentation (0.835) and upside-down flips (0.91) did worse. Those sets had the
    # older flat rust. On the photographic rust (benchmarks/classifier.py, 800 held-out images), image
    # pooling gave 0.84; pooling over the car only 0.91 (0.93 at 1e-2); adding the local maps' maximum
    # over the car (`car_max`: is there any rust at all, which tells mild from none) 0.954 at 1e-2
    # (0.914 at 5e-3). A tap at block 1 (0.90) and width 0.35 for 26 epochs (0.925) did not help.
    # Over three training seeds that default gave 0.954 / 0.914 / 0.941 (mild recall 0.895 / 0.815 /
    # 0.845); the stem at full resolution with a tap at block 1 too gave 0.939 / 0.975 / 0.956 (mild
    # 0.860 / 0.945 / 0.915), the stem alone 0.929 / 0.971 / 0.944, the tap alone (seeds 2, 3) 0.936 /
    # 0.911, a weight moving average (decay 0.995, seeds 2, 3) 0.900 / 0.933.
    # Reading each car and its mirror image (`mirror`, validation and inference) took the stem-1 default
    # from 0.959 / 0.953 / 0.951 (mild 0.925 / 0.895 / 0.900) to 0.965 / 0.965 / 0.964 (mild 0.925 /
    # 0.935 / 0.935) in 178 / 174 / 164 CPU-s.
    dropout: float = 0.0
    local_features: int = 64
    local_taps: tuple[int, ...] = (1, 3, 6)
    pooling: str = "car_max"
    stem_stride: int = 1
    mirror: bool = True
    epochs: int = 18
    batch_size: int = 16
    learning_rate: float = 1e-2
    weight_decay: float = 1e-4
    warmup_epochs: float = 1.0
    ema_decay: float = 0.0
    label_smoothing: float = 0.0
    balance: str = "sampler"
    val_fraction: float = 0.2
    augment: bool = True
    encoder_weights: str = "auto"
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    threads: int = 0
    compile: bool = False
    tensorboard: bool = False

    def __post_init__(self) -> None:
        require(self.epochs >= 1, f"epochs must be at least 1, got {self.epochs}")
        require(self.batch_size >= 1, f"batch_size must be at least 1, got {self.batch_size}")
        require(self.learning_rate > 0, f"learning_rate must be positive, got {self.learning_rate}")
        require(self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}")
        require(self.warmup_epochs >= 0, f"warmup_epochs must be >= 0, got {self.warmup_epochs}")
        require(0 <= self.ema_decay < 1, f"ema_decay must be in [0, 1), got {self.ema_decay}")
        require(
            0 <= self.label_smoothing < 1, f"label_smoothing must be in [0, 1), got {self.label_smoothing}"
        )
        require(self.balance in BALANCES, f"balance {self.balance!r}: expected one of {', '.join(BALANCES)}")
        require(0 <= self.val_fraction < 1, f"val_fraction must be in [0, 1), got {self.val_fraction}")
        require(self.threads >= 0, f"threads must be >= 0 (0: torch's default), got {self.threads}")
        # MobileNetV2 halves the side five times: under 64 px its last map is 1x1, where BatchNorm
        # in training needs two images per batch to have more than one value per channel.
        require(
            self.batch_size >= 2 or self.size >= 64,
            f"batch_size 1 at size {self.size}: the network's last map is 1x1 there and BatchNorm needs "
            "two images per batch; use --batch-size 2 or more, or --size 64 or more",
        )
        self.model_config()  # validates width, size and dropout

    def model_config(self) -> ClassifierConfig:
        from corrode.models.classifier import ClassifierConfig

        return ClassifierConfig(
            width=self.width,
            size=self.size,
            dropout=self.dropout,
            local_features=self.local_features,
            local_taps=self.local_taps,
            pooling=self.pooling,
            stem_stride=self.stem_stride,
            mirror=self.mirror,
        )


# --- data --------------------------------------------------------------------------------------------


def split_by_level(labels: np.ndarray, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(train, validation) indices, stratified: each level with 2+ images gives at least one to validation."""
    rng = np.random.default_rng(seed)
    train: list[int] = []
    validation: list[int] = []
    for level in np.unique(labels):
        members = np.flatnonzero(labels == level)
        members = members[rng.permutation(members.size)]
        count = min(max(round(members.size * val_fraction), 1), members.size - 1)
        count = count if val_fraction > 0 and members.size >= 2 else 0
        validation.extend(members[:count].tolist())
        train.extend(members[count:].tolist())
    return sorted(train), sorted(validation)


def level_weights(labels: np.ndarray, num_levels: int) -> np.ndarray:
    """Per-level weights N / (K x count): 1 for every level when the data are balanced, 0 for absent ones."""
    counts = np.bincount(labels, minlength=num_levels).astype(float)
    present = counts > 0
    weights = np.zeros(num_levels)
    weights[present] = labels.size / (present.sum() * counts[present])
    return weights


def epoch_order(
    indices: Sequence[int], labels: np.ndarray, balance: str, seed: int, epoch: int, context: DistContext
) -> list[int]:
    """This rank's draw of training indices for `epoch`; every rank gets the same count (DDP needs it).

    `sampler`: len(indices) draws with replacement, each level equally likely; otherwise a shuffle.
    """
    rng = np.random.default_rng([seed, epoch])
    pool = np.asarray(indices, dtype=np.int64)
    if balance == "sampler":
        weights = level_weights(labels[pool], int(labels.max()) + 1)[labels[pool]]
        order = rng.choice(pool, size=pool.size, replace=True, p=weights / weights.sum()).tolist()
    else:
        order = pool[rng.permutation(pool.size)].tolist()
    remainder = len(order) % context.world_size
    if remainder:
        order += order[: context.world_size - remainder]
    return order[context.rank :: context.world_size]


def learning_rate(config: TrainClassifierConfig, step: int, steps_per_epoch: int) -> float:
    """Linear warm-up, then cosine decay to zero at the last step (a function of the step alone)."""
    total = max(1, config.epochs * steps_per_epoch)
    warmup = min(total - 1, round(config.warmup_epochs * steps_per_epoch))
    if step < warmup:
        return config.learning_rate * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return config.learning_rate * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def build_optimizer(model: torch.nn.Module, config: TrainClassifierConfig) -> torch.optim.Optimizer:
    """AdamW; no weight decay on biases and normalisation scales (1-d parameters), as is usual."""
    import torch

    decayed = [p for p in model.parameters() if p.ndim > 1]
    kept = [p for p in model.parameters() if p.ndim <= 1]
    return torch.optim.AdamW(
        [{"params": decayed}, {"params": kept, "weight_decay": 0.0}],
        lr=config.learning_rate,
        weight_decay=config.weight_decay,
    )


def weight_average(model: torch.nn.Module, decay: float) -> torch.optim.swa_utils.AveragedModel | None:
    """An exponential moving average of `model`'s parameters (torch's AveragedModel), or None at decay 0.

    Only the parameters are averaged: BatchNorm statistics are recomputed on the averaged weights
    before every validation (`recalibrate_batch_norm`), as they are for the model's own.
    """
    if decay <= 0:
        return None
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    from corrode import checkpoint

    return AveragedModel(
        checkpoint.unwrap(model), multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=False
    )


# --- figures -----------------------------------------------------------------------------------------


def write_confusion(matrix: np.ndarray, names: Sequence[str], out: Path, title: str) -> Path:
    """Confusion matrix PNG: counts in the cells, colour by row share (recall), true levels as rows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from corrode.images import atomic_path

    matrix = np.asarray(matrix)
    totals = matrix.sum(axis=1, keepdims=True)
    shares = np.divide(matrix, totals, out=np.zeros(matrix.shape, dtype=float), where=totals > 0)
    figure, axis = plt.subplots(figsize=(4.8, 4.2))
    axis.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for row in range(matrix.shape[0]):
        for column in range(matrix.shape[1]):
            colour = "white" if shares[row, column] > 0.6 else "black"
            axis.text(column, row, str(matrix[row, column]), ha="center", va="center", color=colour)
    axis.set_xticks(range(len(names)), names)
    axis.set_yticks(range(len(names)), names)
    axis.set_xlabel("predicted level")
    axis.set_ylabel("true level")
    axis.set_title(title, fontsize=10)
    figure.tight_layout()
    with atomic_path(out) as temp:
        figure.savefig(temp, format="png", dpi=100)
    plt.close(figure)
    return out


def write_curves(rows: list[dict[str, str]], out: Path) -> Path:
    from corrode.plots import plot_panels

    def series(column: str) -> tuple[list[int], list[float]]:
        kept = [row for row in rows if row.get(column) not in (None, "", "nan")]
        return [int(row["epoch"]) for row in kept], [float(row[column]) for row in kept]

    panels = {
        "loss": {"train": series("train_loss"), "validation": series("val_loss")},
        "accuracy and macro-F1": {"accuracy": series("accuracy"), "macro-F1": series("macro_f1")},
        "mean absolute error (levels)": {"MAE": series("mae_levels")},
        "recall per level": {name: series(f"recall_{name}") for name in levels.NAMES},
    }
    return plot_panels(panels, out, xlabel="epoch", title="classifier training")


# --- training ----------------------------------------------------------------------------------------


def predict_batches(
    model: torch.nn.Module,
    images: np.ndarray,
    *,
    device: torch.device,
    dtype: torch.dtype | None,
    batch_size: int,
) -> torch.Tensor:
    """Level logits `(N, K)` (CPU, float) for uint8 `(N, 3, S, S)` images, in eval mode."""
    import torch

    from corrode.device import autocast, to_device

    model.eval()
    outputs = []
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            batch = torch.from_numpy(images[start : start + batch_size]).float().div_(255.0)
            with autocast(device, dtype):
                outputs.append(model(to_device(batch, device)).float().cpu())
    return torch.cat(outputs) if outputs else torch.zeros(0, 0)


def augment_batch(images: torch.Tensor, shift: float = 0.1, zoom: float = 0.1) -> torch.Tensor:
    """Random mirror, shift (up to `shift` of the side) and zoom (1 +- `zoom`) of `(B, 3, S, S)` images.

    Geometry only: rust colour and the share of the car it covers are the label, so no colour jitter
    and no crops that could cut the rust away. The background stays black.
    """
    import torch
    from torch.nn import functional

    count = images.shape[0]
    flip = torch.rand(count) < 0.5
    images = torch.where(flip[:, None, None, None], images.flip(3), images)
    scale = 1.0 + (torch.rand(count) * 2 - 1) * zoom
    theta = torch.zeros(count, 2, 3)
    theta[:, 0, 0] = scale
    theta[:, 1, 1] = scale
    theta[:, :, 2] = (torch.rand(count, 2) * 2 - 1) * shift * 2  # grid units: the side is 2 long
    grid = functional.affine_grid(theta, list(images.shape), align_corners=False)
    return functional.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def recalibrate_batch_norm(
    model: torch.nn.Module, images: np.ndarray, *, device: torch.device, batch_size: int, limit: int = 1024
) -> None:
    """Recompute BatchNorm running statistics as plain averages over (up to `limit`) training images.

    Early in training from scratch the running averages lag far behind the weights, and eval mode
    then predicts one level for everything (measured: 48% -> 59% accuracy on the same weights after
    recalibration in a 60-step run); this is "precise BN" (Wu & Johnson, 2021).

    The images are drawn in a fixed random order: each batch must mix the levels as training batches
    do. Given in file order (one level per batch), every layer normalised the level's own mean away
    and the statistics came out wrong (measured: held-out accuracy 0.68 with them, 0.83 with the same
    weights recalibrated on mixed batches).
    """
    import torch

    from corrode.device import to_device

    images = images[np.random.default_rng(0).permutation(len(images))[:limit]]

    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms or len(images) == 0:
        return
    momenta = [norm.momentum for norm in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average over the batches below
    model.train()
    try:
        with torch.no_grad():
            for start in range(0, min(len(images), limit), batch_size):
                batch = torch.from_numpy(images[start : start + batch_size]).float().div_(255.0)
                if batch.shape[0] > 1:  # BatchNorm cannot use a batch of one in training mode
                    model(to_device(batch, device))
    finally:
        for norm, momentum in zip(norms, momenta, strict=True):
            norm.momentum = momentum
        model.eval()


def evaluate_split(
    model: torch.nn.Module,
    data: LevelImages,
    indices: Sequence[int],
    config: TrainClassifierConfig,
    device: torch.device,
    dtype: torch.dtype | None,
    *,
    calibrate: bool = False,
) -> tuple[dict[str, Any], np.ndarray]:
    """Loss, accuracy, macro-F1, MAE, calibration error (ECE) and per-level recall on `indices`; and the
    confusion matrix.

    `calibrate` fits the softmax temperature on these images (`temperature`, saved with the weights)
    and `ece` is then the calibrated error (`ece_uncalibrated` the raw one); otherwise T is 1.
    """
    import torch

    from corrode import metrics
    from corrode.models.classifier import level_loss, level_probabilities

    chosen = np.asarray(indices, dtype=np.int64)
    logits = predict_batches(
        model, data.images[chosen], device=device, dtype=dtype, batch_size=config.batch_size
    )
    targets = torch.from_numpy(data.labels[chosen])
    loss = float(level_loss(logits, targets, label_smoothing=config.label_smoothing))
    temperature = metrics.fit_temperature(logits.numpy(), targets.numpy()) if calibrate else 1.0
    probabilities = level_probabilities(logits / temperature).numpy()
    predicted = probabilities.argmax(axis=1)
    report = metrics.classification_report(targets.numpy(), predicted, levels.NAMES)
    row: dict[str, Any] = {
        "val_loss": loss,
        "accuracy": report["accuracy"],
        "macro_f1": report["macro_f1"],
        "mae_levels": report["mae_levels"],
        "ece": metrics.expected_calibration_error(probabilities, targets.numpy(), CALIBRATION_BINS),
        "ece_uncalibrated": metrics.expected_calibration_error(
            level_probabilities(logits).numpy(), targets.numpy(), CALIBRATION_BINS
        ),
        "temperature": temperature,
    }
    for name, value in report["recall"].items():  # type: ignore[union-attr]
        row[f"recall_{name}"] = float("nan") if value is None else value
    matrix = np.asarray(report["confusion"])
    row["confusion"] = " / ".join(" ".join(str(v) for v in line) for line in matrix)
    return row, matrix


def train_classifier(
    config: TrainClassifierConfig,
    progress: Progress | Reporter | None = None,
    log: Callable[[str], None] | None = None,
    *,
    resume: Path | None = None,
) -> Path:
    """Train a classifier run, or resume the run folder `resume`; returns the run folder.

    `progress` is a Reporter (or a started Rich Progress), `log` receives the notes, skipped files
    and per-epoch lines. SIGINT / SIGTERM stop after the current batch with a state that `resume`
    continues from (raising `Interrupted`). Under torchrun only rank 0 writes files and logs.
    """
    from corrode import distributed

    if config.data is None:
        raise ConfigError("no DATA folder given (level folders none/ mild/ moderate/ severe/)")
    reporter = as_reporter(progress, log)
    with distributed.session(config.device) as context:
        run = open_run(config, kind="train-classifier", context=context, reporter=reporter, resume=resume)
        with run:
            return _ClassifierTraining(run).fit()


class _ClassifierTraining:
    """The classifier's part of a run: build, one epoch, validate, its state."""

    def __init__(self, run: Run) -> None:
        import torch

        from corrode import checkpoint
        from corrode.device import grad_scaler, prepare, resolve_precision
        from corrode.distributed import wrap
        from corrode.models.classifier import LevelClassifier
        from corrode.models.encoder_weights import load_encoder_weights

        self.run, self.config, self.context = run, run.config, run.context
        config, state = self.config, run.state
        self.model_config = config.model_config()
        found = resolve_level_data(config.data, config.masks)
        root, masks_root = found.root, found.masks_root
        self.data = data = read_level_images(root, masks_root, config.size)
        for error in data.failed:
            run.reporter.skip(error)
        run.note(
            f"masked with {masks_root}"
            if masks_root is not None
            else f"no {root.name}_masks/ folder beside {root}: "
            "images taken as already masked (background black)"
        )
        self.train_indices, self.val_indices = split_by_level(data.labels, config.val_fraction, config.seed)
        if not self.train_indices:
            raise UsageError(f"{root}: no training images left after the validation split")
        counts = np.bincount(data.labels[self.train_indices], minlength=len(levels.NAMES))
        missing = [name for name, count in zip(levels.NAMES, counts, strict=True) if count == 0]
        if missing:
            run.note(
                f"warning: no training images of level(s) {', '.join(missing)}: the model cannot learn them"
            )
        self.device = device = self.context.device
        self.dtype = resolve_precision(config.precision, device)

        seed_everything(config.seed)
        model = LevelClassifier(self.model_config)
        if state is None:
            run.note(load_encoder_weights(model, config.encoder_weights))
        else:
            checkpoint.load_weights(model, state["model"], run.dir / runs.STATE)
        self.model = prepare(model, device, cpu_channels_last=True)
        self.network = wrap(self.model, self.context, compile=config.compile)
        self.optimizer = build_optimizer(model, config)
        self.ema = weight_average(self.model, config.ema_decay)
        self.scaler = grad_scaler(device, self.dtype)
        self.epoch, self.batch, self.best_score, self.best_epoch = 0, 0, (-1.0, 0.0), 0
        self.loss_sum = torch.zeros((), dtype=torch.float64)
        self.rng: dict[str, Any] | None = None
        if state is not None:
            self.load_state_dict(state)
        self.loss_weights = torch.from_numpy(
            level_weights(data.labels[self.train_indices], len(levels.NAMES))
        ).float()
        per_rank = math.ceil(len(self.train_indices) / self.context.world_size)
        self.steps_per_epoch = math.ceil(per_rank / config.batch_size)
        if run.is_main:
            split = {
                "train": [str(data.paths[i]) for i in self.train_indices],
                "validation": [str(data.paths[i]) for i in self.val_indices],
            }
            run.write(
                run.dir / SPLIT, lambda path: atomic_write_text(path, json.dumps(split, indent=1) + "\n")
            )
        per_level = ", ".join(f"{n} {c}" for n, c in zip(levels.NAMES, counts, strict=True))
        run.note(
            f"{len(data.paths)} images ({per_level} to train), {len(self.val_indices)} validation; "
            f"{config.size} px on {device}"
            + (f" x {self.context.world_size} processes" if self.context.enabled else "")
        )

    @property
    def scored(self) -> torch.nn.Module:
        """The weights validated and saved: the moving average when there is one, else the model's."""
        return self.model if self.ema is None else self.ema.module

    # --- state
    def state_dict(self) -> dict[str, Any]:
        from corrode import checkpoint
        from corrode.distributed import gather_to_main

        return {
            "model": checkpoint.unwrap(self.model).state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "epoch": self.epoch,
            "batch": self.batch,
            "loss_sum": self.loss_sum.clone(),
            "best_f1": self.best_score[0],
            "best_neg_mae": self.best_score[1],
            "best_epoch": self.best_epoch,
            "rng": checkpoint.rng_state(),
            "ranks": gather_to_main({"rng": checkpoint.rng_state()}, self.context),
            "model_config": to_dict(self.model_config),
            **({"ema": self.ema.state_dict()} if self.ema is not None else {}),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        from corrode.checkpoint import CheckpointError

        path = self.run.dir / runs.STATE
        try:
            self.optimizer.load_state_dict(state["optimizer"])
            if self.ema is not None:
                self.ema.load_state_dict(state["ema"])
            self.epoch, self.best_epoch = int(state["epoch"]), int(state["best_epoch"])
            self.best_score = (float(state["best_f1"]), float(state["best_neg_mae"]))
            self.batch = int(state.get("batch", 0))
            if self.batch:
                self.loss_sum = state["loss_sum"].double()
                ranks = state.get("ranks") or [{"rng": state["rng"]}]
                self.rng = ranks[self.context.rank % len(ranks)]["rng"]
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(path, f"not a train-classifier training state ({exc})") from exc
        if self.epoch >= self.config.epochs:
            raise UsageError(
                f"{self.run.dir}: already trained {self.epoch} epochs; "
                f"pass --epochs above {self.epoch} to train more"
            )
        where = f"epoch {self.epoch}" + (f" and {self.batch} batches" if self.batch else "")
        self.run.note(f"resuming {self.run.dir} after {where} of {self.config.epochs}")

    # --- one epoch
    def train_epoch(self) -> float:
        """The rest of epoch `self.epoch` (from batch `self.batch`); its mean training loss."""
        import torch

        from corrode import checkpoint, distributed
        from corrode.device import autocast, to_device
        from corrode.models.classifier import level_loss

        config, run, data, device = self.config, self.run, self.data, self.device
        if self.batch == 0:
            seed_everything(config.seed * 1_000_003 + self.epoch * 1_009 + self.context.rank)
            self.loss_sum = torch.zeros((), dtype=torch.float64)
        elif self.rng is not None:  # mid-epoch resume: the RNGs as they were after the last batch done
            checkpoint.set_rng_state(self.rng)
            self.rng = None
        order = epoch_order(
            self.train_indices, data.labels, config.balance, config.seed, self.epoch, self.context
        )
        starts = list(range(0, len(order), config.batch_size))
        if len(starts) > 1 and len(order) - starts[-1] == 1:
            starts.pop()  # BatchNorm cannot train on a batch of one (a 1x1 map at 32 px holds one value)
        title = f"epoch {self.epoch + 1}/{config.epochs}"
        run.reporter.start("train", self.steps_per_epoch, title)
        run.reporter.advance("train", completed=self.batch, description=title)
        self.network.train()
        for batch_index in range(self.batch, len(starts)):
            start = starts[batch_index]
            chosen = np.asarray(order[start : start + config.batch_size])
            images = torch.from_numpy(data.images[chosen]).float().div_(255.0)
            targets = torch.from_numpy(data.labels[chosen])
            if config.augment:
                images = augment_batch(images)
            images, targets = to_device(images, device), targets.to(device)
            rate = learning_rate(
                config, self.epoch * self.steps_per_epoch + batch_index, self.steps_per_epoch
            )
            for group in self.optimizer.param_groups:
                group["lr"] = rate
            weights = self.loss_weights.to(device)[targets] if config.balance == "weights" else None
            with autocast(device, self.dtype):
                logits = self.network(images)
            loss = level_loss(logits, targets, label_smoothing=config.label_smoothing, sample_weights=weights)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            if self.ema is not None:
                self.ema.update_parameters(self.model)
            self.loss_sum += float(loss.detach()) * len(chosen)
            self.batch = batch_index + 1
            run.reporter.advance("train")
            if self.batch < len(starts) and run.should_stop():
                run.save_state(self.state_dict())
                raise run.interrupted(f"in epoch {self.epoch + 1} after batch {self.batch}")
        return float(distributed.all_reduce_mean(self.loss_sum.to(device), self.context)) / max(1, len(order))

    def validate(self) -> tuple[dict[str, Any], np.ndarray | None]:
        """Recalibrate BatchNorm, then measure (rank 0) on the validation split."""
        config, data = self.config, self.data
        # Every rank holds all images and draws the same subset, so these give identical results
        # on every rank and the ranks stay in step without a broadcast.
        shuffled = np.random.default_rng([config.seed, self.epoch, 7]).permutation(self.train_indices)
        subset = np.sort(shuffled[:RECALIBRATION_IMAGES])
        recalibrate_batch_norm(
            self.scored, data.images[subset], device=self.device, batch_size=config.batch_size
        )
        if not self.run.is_main:
            return {}, None
        measured_on = self.val_indices or self.train_indices
        calibrate = bool(self.val_indices)
        measured, matrix = evaluate_split(
            self.scored, data, measured_on, config, self.device, self.dtype, calibrate=calibrate
        )
        if not self.val_indices:
            measured["val_loss"] = float("nan")
        return measured, matrix

    # --- the loop
    def fit(self) -> Path:
        from corrode import distributed

        config, run = self.config, self.run
        if run.resumed:
            if run.is_main:
                run.metrics.truncate_after("epoch", self.epoch)
        else:
            run.save_state(self.state_dict())  # from here on state.pt always holds a whole step
        while self.epoch < config.epochs:
            started = time.perf_counter()
            train_loss = self.train_epoch()
            row: dict[str, Any] = {
                "epoch": self.epoch + 1,
                "lr": self.optimizer.param_groups[0]["lr"],
                "train_loss": train_loss,
            }
            measured, matrix = self.validate()
            row.update(measured)
            improved = False
            if run.is_main:
                score = (measured["macro_f1"], -measured["mae_levels"])
                improved = score > self.best_score
                if improved:
                    self.best_score, self.best_epoch = score, self.epoch + 1
            row["seconds"] = round(time.perf_counter() - started, 2)
            self.epoch, self.batch = self.epoch + 1, 0
            self._save(row, matrix, improved)
            if run.is_main:
                run.note(_epoch_line(row, config.epochs))
            distributed.barrier(self.context)
            if self.epoch < config.epochs and run.should_stop():
                raise run.interrupted(f"after epoch {self.epoch}")
        logged = run.metrics.rows() if run.is_main else []
        best_row = next((row for row in logged if row.get("epoch") == str(self.best_epoch)), {})
        run.note(
            f"best {'validation' if self.val_indices else 'training-set'} macro-F1 {self.best_score[0]:.4f} "
            f"at epoch {self.best_epoch} (accuracy {float(best_row.get('accuracy', 'nan')):.4f}, "
            f"calibration error {float(best_row.get('ece', 'nan')):.4f}); run in {run.dir}"
        )
        return run.dir

    def _save(self, row: dict[str, Any], matrix: np.ndarray | None, improved: bool) -> None:
        """Weights, then the metrics row (and figures), then the state."""
        # The weights files carry the temperature fitted on this epoch's validation split.
        calibrated = dataclasses.replace(self.model_config, temperature=float(row.get("temperature", 1.0)))
        run, saved_config = self.run, to_dict(calibrated)
        state = self.state_dict()  # every rank takes part (gathers per-rank RNG)
        if not run.is_main:
            return
        run.save_weights(run.dir / runs.WEIGHTS, self.scored, kind="classifier", config=saved_config)
        if improved:
            run.save_weights(run.dir / runs.BEST_WEIGHTS, self.scored, kind="classifier", config=saved_config)
        where = "validation" if self.val_indices else "training images (no validation split)"
        title = f"epoch {self.epoch}, {where}"
        assert matrix is not None
        run.write(run.dir / CONFUSION, lambda path: write_confusion(matrix, levels.NAMES, path, title))
        run.log(row, self.epoch)
        run.write(run.dir / CURVES, lambda path: write_curves(run.metrics.rows(), path))
        run.save_state(state)


def _epoch_line(row: dict[str, Any], epochs: int) -> str:
    recall = " ".join(f"{name} {row[f'recall_{name}']:.2f}" for name in levels.NAMES)
    return (
        f"epoch {row['epoch']}/{epochs}  loss {row['train_loss']:.4f} | val loss {row['val_loss']:.4f} "
        f"acc {row['accuracy']:.3f} macro-F1 {row['macro_f1']:.3f} MAE {row['mae_levels']:.3f} "
        f"ECE {row['ece']:.3f} (T {row['temperature']:.2f}) "
        f"| recall {recall} | {row['seconds']} s"
    )

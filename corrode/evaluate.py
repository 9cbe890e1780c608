"""`corrode evaluate`: numbers that say how good a trained GAN's translations are, level by level.

Clean (none) cars are translated to every level the GAN makes; per level the report gives
- level accuracy and mean predicted level of the generated cars, judged by a classifier trained on
  real images (never on generated ones);
- FID and KID between generated and real cars of that level (torchmetrics) in a stated feature space:
  the classifier's penultimate layer by default (works offline), Inception-v3 when the user has
  torch-fidelity and its weights file;
- cycle reconstruction error, L1 and PSNR over the car's pixels, for none -> level -> none and for
  real level -> none -> level;
- colour kept: mean CIEDE2000 between input and output over car pixels that are not rust in the
  output (rust test: corrode.metrics, module doc), the paper's "bright blue cars change colour";
- pixels changed outside the car by the full-size composited render (corrode.render; must be 0);
- on `corrode synth` data, the rust coverage of the generated cars against the true coverage band of
  that level from the synth manifest.

Writes report.json, report.md and report.png (sample grid + per-level bars) into the output folder.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from corrode import levels
from corrode.config import require
from corrode.errors import FileError, UsageError

if TYPE_CHECKING:
    import torch

    from corrode.classify import Classifier

REPORT_JSON = "report.json"
REPORT_MARKDOWN = "report.md"
REPORT_FIGURE = "report.png"
FEATURE_CHOICES = ("classifier", "inception")


class Translates(Protocol):
    """What evaluate needs from a translator (corrode.translate.Translator fits)."""

    image_size: int
    levels: tuple[str, ...]

    def to_level(self, images: torch.Tensor, level: str) -> torch.Tensor: ...

    def to_clean(self, images: torch.Tensor, level: str) -> torch.Tensor: ...


@dataclass(frozen=True)
class EvaluateConfig:
    """`sources`: a folder of held-out clean cars (default: DATA's none images, which the GAN may have
    trained on - the report says so). `limit` caps the clean cars translated, `real_limit` the real
    cars per level. `render_checks` full-size composites are checked for changes outside the car."""

    gan: str | None = None
    data: Path | None = None
    classifier: str | None = None
    masks: Path | None = None
    sources: Path | None = None
    out: Path | None = None
    limit: int = 64
    real_limit: int = 256
    render_checks: int = 8
    features: str = "classifier"
    inception_weights: Path | None = None
    samples: int = 4
    batch_size: int = 16
    device: str = "auto"
    precision: str = "auto"

    def __post_init__(self) -> None:
        require(self.limit >= 1, f"limit {self.limit} must be >= 1")
        require(self.real_limit >= 2, f"real_limit {self.real_limit} must be >= 2")
        require(self.render_checks >= 0, f"render_checks {self.render_checks} must be >= 0")
        require(
            self.features in FEATURE_CHOICES,
            f"features {self.features!r}: one of {', '.join(FEATURE_CHOICES)}",
        )
        require(self.samples >= 1, f"samples {self.samples} must be >= 1")
        require(self.batch_size >= 1, f"batch_size {self.batch_size} must be >= 1")


@dataclass
class Report:
    """Everything measured; `levels` maps each level name to its measures (JSON-ready values)."""

    gan: str
    data: str
    classifier: str | None
    features: str
    image_size: int
    sources: dict[str, Any]
    levels: dict[str, dict[str, Any]] = field(default_factory=dict)
    classifier_on_real: dict[str, float | None] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    folder: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return _clean_json(
            {
                "gan": self.gan,
                "data": self.data,
                "classifier": self.classifier,
                "features": self.features,
                "image_size": self.image_size,
                "sources": self.sources,
                "levels": self.levels,
                "classifier_on_real": self.classifier_on_real,
                "notes": self.notes,
                "seconds": round(self.seconds, 2),
                "folder": self.folder,
            }
        )

    def markdown(self) -> str:
        lines = [
            "# GAN evaluation",
            "",
            f"- GAN: `{self.gan}`",
            f"- data: `{self.data}`",
            f"- classifier: `{self.classifier}`" if self.classifier else "- classifier: none",
            f"- FID/KID features: {self.features}",
            f"- clean cars translated: {self.sources.get('count')} from `{self.sources.get('folder')}`"
            + ("" if self.sources.get("held_out") else " (may include the GAN's training images)"),
            f"- image size: {self.image_size} px; measured in {self.seconds:.1f} s",
            "",
            "| level | accuracy | mean level | FID | KID | none->X->none L1 / PSNR | X->none->X L1 / PSNR "
            "| colour shift (dE00) | changed outside car | rust coverage (generated / true band) |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for name, values in self.levels.items():
            coverage = values.get("coverage")
            coverage_text = "-"
            if coverage:
                band = coverage.get("true_band")
                band_text = f"{band[0]:.2f}-{band[1]:.2f}" if band else "?"
                coverage_text = f"{_fmt(coverage.get('generated_mean'), 3)} / {band_text}"
            changed = values.get("changed_outside_car")
            lines.append(
                f"| {name} | {_fmt(values.get('accuracy'), 3)} | {_fmt(values.get('mean_level'), 2)} "
                f"| {_fmt(values.get('fid'), 2)} | {_fmt(values.get('kid'), 4)} "
                f"| {_fmt(values['cycle_clean']['l1'], 4)} / {_fmt(values['cycle_clean']['psnr'], 1)} "
                f"| {_fmt(values['cycle_level']['l1'], 4)} / {_fmt(values['cycle_level']['psnr'], 1)} "
                f"| {_fmt(values.get('colour_shift'), 2)} "
                f"| {'-' if changed is None else changed} | {coverage_text} |"
            )
        if self.classifier_on_real:
            lines += ["", "Classifier accuracy on the real cars of each level (its own reliability):", ""]
            lines += [f"- {name}: {_fmt(value, 3)}" for name, value in self.classifier_on_real.items()]
        lines += [
            "",
            "Colour shift: mean CIEDE2000 between input and output over car pixels that are not rust in the "
            "output (rust: hue 0-45 deg, saturation >= 0.3, value 0.08-0.9, and dE00 >= 10 from the input). "
            "Cycle errors are over car pixels, images in [0, 1].",
        ]
        if self.notes:
            lines += ["", "Notes:", ""] + [f"- {note}" for note in self.notes]
        return "\n".join(lines) + "\n"


def _fmt(value: Any, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


def _clean_json(value: Any) -> Any:
    """NaN and inf become None (JSON has neither)."""
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, dict):
        return {str(k): _clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean_json(v) for v in value]
    if isinstance(value, np.generic):
        return _clean_json(value.item())
    return value


# --- data --------------------------------------------------------------------------------------------


@dataclass
class CarSet:
    """Masked cars at one size: `images` (N, S, S, 3) uint8, `masks` (N, S, S) bool, their files."""

    images: np.ndarray
    masks: np.ndarray
    paths: list[Path]

    def tensor(self) -> torch.Tensor:
        import torch

        return torch.from_numpy(self.images).permute(0, 3, 1, 2).float().div(255.0)

    def __len__(self) -> int:
        return len(self.paths)


def spread(items: Sequence[Any], count: int) -> list[Any]:
    """`count` items evenly spaced over `items` (all of them when there are fewer)."""
    if len(items) <= count:
        return list(items)
    picks = np.linspace(0, len(items) - 1, count).round().astype(int)
    return [items[i] for i in picks]


def read_cars(
    paths: Sequence[Path],
    size: int,
    masks_root: Path | None,
    log: Callable[[str], None],
    mask_for: Callable[[Path], Path | None] | None = None,
) -> CarSet:
    """Read and mask `paths` at `size`; unreadable ones are logged and left out.

    Masks come from `mask_for(path)` when given (None: the image is already masked), else from
    `masks_root/<level>/<stem>.*`.
    """
    from corrode.leveldata import load_masked

    images, masks, kept = [], [], []
    for path in paths:
        try:
            if mask_for is not None:
                image, mask = load_masked(path, size, None, mask_for(path))
            else:
                image, mask = load_masked(path, size, masks_root)
        except FileError as exc:
            log(f"skipped {exc}")
            continue
        images.append(image)
        masks.append(mask)
        kept.append(path)
    if not kept:
        return CarSet(np.zeros((0, size, size, 3), np.uint8), np.zeros((0, size, size), bool), [])
    return CarSet(np.stack(images), np.stack(masks), kept)


@dataclass
class DataPlan:
    root: Path
    masks_root: Path | None
    sources: list[Path]
    sources_folder: Path
    held_out: bool
    real: dict[str, list[Path]]
    manifest: list[dict[str, str]] | None

    def source_mask(self, path: Path) -> Path | None:
        """A clean car's mask: `<sources>_masks/<stem>.*`, else `<masks root>/none/<stem>.*`, else None."""
        from corrode.datasets import level_mask_path

        folders = [self.sources_folder.with_name(self.sources_folder.name + "_masks")]
        if self.masks_root is not None:
            folders.append(self.masks_root / levels.CLEAN.name)
        for folder in folders:
            found = level_mask_path(Path(folder.name) / path.name, folder.parent) if folder.is_dir() else None
            if found is not None:
                return found
        return None


def plan_data(cfg: EvaluateConfig) -> DataPlan:
    """Which clean cars to translate and which real cars stand for each level."""
    from corrode.datasets import DatasetError, find_levels
    from corrode.images import list_images
    from corrode.leveldata import resolve_level_data

    if cfg.data is None:
        raise UsageError(
            "no --data folder given (level folders none/ mild/ moderate/ severe/, or a synth folder)"
        )
    found = resolve_level_data(Path(cfg.data), cfg.masks)
    root, masks_root = found.root, found.masks_root
    found = find_levels(root, required=())
    manifest = _synth_manifest(Path(cfg.data), root)
    real: dict[str, list[Path]] = {name: list(found.get(name, [])) for name in levels.NAMES}
    if manifest is not None:
        # Synth data are filed under their noisy *given* labels; the manifest knows the true level.
        base = _manifest_base(Path(cfg.data), root)
        real = {name: [] for name in levels.NAMES}
        for row in manifest:
            if row.get("set") == "levels" and row.get("true_level") in real:
                path = base / row["file"]
                if path.is_file():
                    real[row["true_level"]].append(path)
    if cfg.sources is not None:
        sources = list_images([cfg.sources])
        folder, held_out = Path(cfg.sources), True
    else:
        sources = list(real[levels.CLEAN.name])
        folder, held_out = root / levels.CLEAN.name, False
    if not sources:
        raise DatasetError(f"{folder}: no clean (none) car images to translate")
    return DataPlan(root, masks_root, spread(sorted(sources), cfg.limit), folder, held_out, real, manifest)


def _manifest_base(data: Path, root: Path) -> Path:
    return data if (data / "manifest.csv").is_file() else root.parent


def _synth_manifest(data: Path, root: Path) -> list[dict[str, str]] | None:
    from corrode.synth import MANIFEST, read_manifest

    for folder in (data, root.parent):
        path = folder / MANIFEST
        if path.is_file():
            try:
                rows = read_manifest(path)
            except (OSError, UnicodeDecodeError, ValueError):
                return None
            if rows and {"file", "true_level", "rust_fraction"} <= set(rows[0]):
                return rows
    return None


def coverage_bands(manifest: list[dict[str, str]]) -> dict[str, tuple[float, float, float]]:
    """(lowest, highest, mean) true rust fraction per true level, from a synth manifest."""
    values: dict[str, list[float]] = {}
    for row in manifest:
        try:
            values.setdefault(row["true_level"], []).append(float(row["rust_fraction"]))
        except (KeyError, ValueError):
            continue
    return {name: (min(v), max(v), float(np.mean(v))) for name, v in values.items() if v}


# --- measuring ---------------------------------------------------------------------------------------


def _translate(
    translator: Translates, images: torch.Tensor, level: str, clean: bool, batch_size: int
) -> torch.Tensor:
    import torch

    outputs = []
    for start in range(0, images.shape[0], batch_size):
        batch = images[start : start + batch_size]
        result = translator.to_clean(batch, level) if clean else translator.to_level(batch, level)
        outputs.append(result.detach().float().cpu().clamp(0, 1))
    return torch.cat(outputs) if outputs else images.clone()


def _arrays(images: torch.Tensor) -> np.ndarray:
    return images.permute(0, 2, 3, 1).numpy().astype(np.float64)


def _stacked(images: np.ndarray) -> np.ndarray:
    """(N, S, S, ...) -> (N * S, S, ...): one tall image, so pixel means pool over all the cars."""
    return images.reshape(-1, *images.shape[2:])


def cycle_error(original: np.ndarray, reconstructed: np.ndarray, masks: np.ndarray) -> dict[str, float]:
    """L1 and PSNR over the car pixels of all images together; arrays (N, S, S, 3) in [0, 1]."""
    from corrode import metrics

    first, second, car = _stacked(original), _stacked(reconstructed), _stacked(masks)
    return {"l1": metrics.mean_l1(first, second, car), "psnr": metrics.psnr(first, second, car)}


def _feature_space(cfg: EvaluateConfig, classifier: Classifier | None) -> tuple[Any, str]:
    """(nn.Module for torchmetrics, description) or (None, reason)."""
    if cfg.features == "inception":
        try:
            from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3  # noqa: F401
        except ImportError as exc:
            raise UsageError(
                "--features inception needs torch-fidelity (pip install torch-fidelity)"
            ) from exc
        if cfg.inception_weights is None or not Path(cfg.inception_weights).is_file():
            raise UsageError(
                "--features inception needs --inception-weights FILE (pt_inception-2015-12-05-6726825d.pth); "
                "nothing is downloaded"
            )
        module = _inception_module(Path(cfg.inception_weights))
        return module, f"Inception-v3 pool3 (2048-d, torch-fidelity, weights {cfg.inception_weights})"
    if classifier is None:
        return None, "none (no classifier: FID and KID not measured)"
    where = f" of {classifier.path}" if classifier.path else ""
    description = (
        f"classifier penultimate layer ({classifier.num_features}-d pooled MobileNetV2 features{where}, "
        f"images resized to {classifier.image_size} px); not comparable with Inception FIDs"
    )
    return classifier.feature_module(), description


def _features(feature: Any, images: torch.Tensor, batch_size: int) -> torch.Tensor:
    """`(N, F)` features of `(N, 3, S, S)` images, computed once per set for both FID and KID."""
    import torch

    with torch.inference_mode():
        parts = [
            feature(images[start : start + batch_size]).float().cpu()
            for start in range(0, len(images), batch_size)
        ]
    return torch.cat(parts) if parts else torch.zeros(0, feature.num_features)


def _inception_module(weights: Path) -> Any:
    from torchmetrics.image.fid import NoTrainInceptionV3

    from corrode.metrics import feature_module

    network = NoTrainInceptionV3(
        name="inception-v3-compat", features_list=["2048"], feature_extractor_weights_path=str(weights)
    )

    def extract(images: torch.Tensor) -> torch.Tensor:
        return network((images.clamp(0, 1) * 255).byte())

    return feature_module(extract, 2048)


def evaluate(
    cfg: EvaluateConfig,
    *,
    translator: Translates | None = None,
    classifier: Classifier | None = None,
    log: Callable[[str], None] | None = None,
    cache: dict[Any, Any] | None = None,
) -> Report:
    """Measure the GAN named by `cfg` (or the `translator` given) and write the report files.

    `cache`: a dict kept between calls on the same data (a benchmark evaluating checkpoints) holds
    the real cars and their features, so they are read and embedded once.
    """
    import torch

    from corrode import metrics
    from corrode.classify import Classifier, expected_level
    from corrode.locate import ModelNotFoundError

    say = log or (lambda line: None)
    started = time.perf_counter()
    gan_name = str(cfg.gan) if cfg.gan is not None else "given translator"
    if translator is None:
        from corrode.locate import find_model
        from corrode.translate import Translator

        gan_path = find_model(cfg.gan, "gan")
        translator = Translator.load(gan_path, device=cfg.device, precision=cfg.precision)
        gan_name = str(gan_path)
    out = _output_folder(cfg)
    notes: list[str] = []
    if classifier is None:
        try:
            classifier = Classifier.load(cfg.classifier, cfg.device)
        except ModelNotFoundError as exc:
            if cfg.classifier is not None:
                raise
            notes.append(f"no classifier ({exc}): level accuracy, mean level, FID and KID not measured")
    feature, feature_text = _feature_space(cfg, classifier)

    plan = plan_data(cfg)
    size = int(translator.image_size)
    sources = read_cars(plan.sources, size, plan.masks_root, say, mask_for=plan.source_mask)
    if len(sources) == 0:
        raise UsageError(f"{plan.sources_folder}: none of the clean car images could be read")
    if plan.masks_root is None:
        notes.append("no masks folder: images taken as already masked; the car is their non-black pixels")
    if not plan.held_out:
        notes.append(
            f"clean cars from {plan.sources_folder} (the GAN may have trained on them); "
            "pass --sources with held-out images for an unbiased measure"
        )
    say(f"translating {len(sources)} clean cars at {size} px; FID/KID features: {feature_text}")
    source_tensor = sources.tensor()
    source_arrays = _arrays(source_tensor)
    bands = coverage_bands(plan.manifest) if plan.manifest is not None else None
    targets = [name for name in levels.RUSTY_NAMES if name in tuple(translator.levels)]
    report = Report(
        gan=gan_name,
        data=str(cfg.data),
        classifier=str(classifier.path) if classifier is not None and classifier.path else None,
        features=feature_text,
        image_size=size,
        sources={"folder": str(plan.sources_folder), "count": len(sources), "held_out": plan.held_out},
        notes=notes,
    )
    samples: dict[str, np.ndarray] = {}
    render_cars = _render_inputs(plan, cfg.render_checks, say) if cfg.render_checks else None
    if render_cars is None and cfg.render_checks:
        notes.append("pixels changed outside the car not measured: it needs the images' masks")

    for name in targets:
        level = levels.get(name)
        fake_tensor = _translate(translator, source_tensor, name, False, cfg.batch_size)
        # The generator never sees the background; like render, the output keeps it black.
        fake_tensor = fake_tensor * torch.from_numpy(sources.masks)[:, None].float()
        rebuilt = _translate(translator, fake_tensor, name, True, cfg.batch_size)
        fake_arrays = _arrays(fake_tensor)
        samples[name] = fake_arrays[: cfg.samples]
        values: dict[str, Any] = {"generated": len(sources)}
        values["cycle_clean"] = cycle_error(source_arrays, _arrays(rebuilt), sources.masks)
        values["colour_shift"] = metrics.colour_shift(
            _stacked(source_arrays), _stacked(fake_arrays), _stacked(sources.masks)
        )
        key = (name, size, cfg.real_limit, str(cfg.data), str(cfg.masks), feature_text)
        if cache is not None and key in cache:
            real, real_features, real_accuracy = cache[key]
        else:
            real = read_cars(spread(sorted(plan.real[name]), cfg.real_limit), size, plan.masks_root, say)
            real_features = _features(feature, real.tensor(), cfg.batch_size) if feature is not None else None
            real_accuracy = None
            if classifier is not None and len(real):
                real_predicted = classifier.predict(real.tensor(), batch_size=cfg.batch_size).argmax(dim=1)
                real_accuracy = float((real_predicted == level.index).float().mean())
            if cache is not None:
                cache[key] = (real, real_features, real_accuracy)
        if real_accuracy is not None:
            report.classifier_on_real[name] = real_accuracy
        values["real_images"] = len(real)
        values["cycle_level"] = {"l1": None, "psnr": None}
        if len(real):
            real_tensor = real.tensor()
            back = _translate(translator, real_tensor, name, True, cfg.batch_size)
            again = _translate(
                translator, back * torch.from_numpy(real.masks)[:, None].float(), name, False, cfg.batch_size
            )
            values["cycle_level"] = cycle_error(_arrays(real_tensor), _arrays(again), real.masks)
        if classifier is not None:
            probabilities = classifier.predict(fake_tensor, batch_size=cfg.batch_size)
            predicted = probabilities.argmax(dim=1)
            values["accuracy"] = float((predicted == level.index).float().mean())
            values["mean_level"] = float(predicted.float().mean())
            values["mean_expected_level"] = float(expected_level(probabilities).mean())
            counts = torch.bincount(predicted, minlength=len(classifier.names)).tolist()
            values["predicted"] = {
                n: c / len(predicted) for n, c in zip(classifier.names, counts, strict=True)
            }
        if feature is not None and real_features is not None and len(real) >= 2 and len(sources) >= 2:
            fake_features = _features(feature, fake_tensor, cfg.batch_size)
            values["fid"] = metrics.frechet_distance_of_features(real_features, fake_features)
            values["kid"], values["kid_std"] = metrics.kernel_distance_of_features(
                real_features, fake_features
            )
        elif feature is not None:
            values["fid"] = values["kid"] = None
            notes.append(f"{name}: FID/KID need at least two real and two generated cars")
        if bands is not None:
            values["coverage"] = _coverage(source_arrays, fake_arrays, sources.masks, real, bands.get(name))
        values["changed_outside_car"] = None
        if render_cars is not None:
            values["changed_outside_car"], values["render_checked"] = _changed_outside(
                translator, render_cars, name
            )
        report.levels[name] = values
        say(_level_line(name, values))

    report.seconds = time.perf_counter() - started
    if out is not None:
        report.folder = str(out)
        write_report(report, out, source_arrays[: cfg.samples], samples)
    return report


def _output_folder(cfg: EvaluateConfig) -> Path | None:
    if cfg.out is not None:
        return Path(cfg.out)
    if cfg.gan is not None and Path(cfg.gan).is_dir():
        return Path(cfg.gan)
    return None


def _coverage(
    sources: np.ndarray,
    generated: np.ndarray,
    masks: np.ndarray,
    real: CarSet,
    band: tuple[float, float, float] | None,
) -> dict[str, Any]:
    from corrode import metrics

    made = [
        metrics.rust_coverage(g, m, reference=s) for s, g, m in zip(sources, generated, masks, strict=True)
    ]
    # The same estimator on real cars of the level: how far the colour test itself is from the truth.
    real_estimates = [
        metrics.rust_coverage(image / 255.0, mask)
        for image, mask in zip(real.images, real.masks, strict=True)
    ]
    result: dict[str, Any] = {
        "generated_mean": float(np.nanmean(made)) if made else None,
        "generated_std": float(np.nanstd(made)) if made else None,
        "real_estimate_mean": float(np.nanmean(real_estimates)) if real_estimates else None,
        "true_band": None,
        "true_mean": None,
        "within_band": None,
    }
    if band is not None:
        low, high, mean = band
        result["true_band"] = [low, high]
        result["true_mean"] = mean
        result["within_band"] = float(np.mean([(low <= v <= high) for v in made])) if made else None
    return result


@dataclass
class _RenderCars:
    images: list[np.ndarray]
    masks: list[np.ndarray]


def _render_inputs(plan: DataPlan, count: int, log: Callable[[str], None]) -> _RenderCars | None:
    """Full-size photos (background kept) and their masks, for the composite check."""
    from corrode.datasets import check_same_size
    from corrode.images import read_image, read_mask

    images, masks = [], []
    for path in spread(plan.sources, count):
        mask_path = plan.source_mask(path)
        if mask_path is None:
            continue
        try:
            image, mask = read_image(path), read_mask(mask_path)
            check_same_size(image, mask, path, mask_path)
        except FileError as exc:
            log(f"skipped {exc}")
            continue
        if mask.any():
            images.append(image)
            masks.append(mask)
    return _RenderCars(images, masks) if images else None


def _changed_outside(translator: Translates, cars: _RenderCars, level: str) -> tuple[int, int]:
    """Pixels outside the car that differ between the photo and its composited render, summed."""
    from corrode import metrics
    from corrode.render import Renderer

    renderer = Renderer(translator, composite=True)
    changed = 0
    for rendering in renderer.render(cars.images, [level], cars.masks):
        changed += metrics.changed_pixels(rendering.image, rendering.outputs[level], ~rendering.mask)
    return changed, len(cars.images)


def _level_line(name: str, values: dict[str, Any]) -> str:
    parts = [f"{name}:"]
    if "accuracy" in values:
        parts.append(f"accuracy {values['accuracy']:.3f}, mean level {values['mean_level']:.2f}")
    if values.get("fid") is not None:
        parts.append(f"FID {values['fid']:.2f}, KID {values['kid']:.4f}")
    parts.append(f"colour shift {_fmt(values['colour_shift'], 2)} dE00")
    parts.append(f"cycle L1 {_fmt(values['cycle_clean']['l1'], 4)}")
    if values.get("coverage"):
        parts.append(f"rust coverage {_fmt(values['coverage']['generated_mean'], 3)}")
    if values.get("changed_outside_car") is not None:
        parts.append(f"{values['changed_outside_car']} px changed outside the car")
    return " ".join(parts[:1]) + " " + "; ".join(parts[1:])


# --- writing -----------------------------------------------------------------------------------------


def write_report(report: Report, out: Path, sources: np.ndarray, samples: dict[str, np.ndarray]) -> None:
    from corrode.images import atomic_write_text

    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / REPORT_JSON, json.dumps(report.as_dict(), indent=2) + "\n")
    atomic_write_text(out / REPORT_MARKDOWN, report.markdown())
    write_figure(report, out / REPORT_FIGURE, sources, samples)


def write_figure(report: Report, path: Path, sources: np.ndarray, samples: dict[str, np.ndarray]) -> Path:
    """Sample grid (clean input, then each level) over per-level bars of the main measures."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from corrode.grids import contact_sheet
    from corrode.images import atomic_path

    names = list(report.levels)
    rows = []
    for index in range(len(sources)):
        row = [np.clip(sources[index] * 255, 0, 255).astype(np.uint8)]
        row += [
            np.clip(samples[name][index] * 255, 0, 255).astype(np.uint8)
            for name in names
            if index < len(samples[name])
        ]
        rows.append(row)
    cell = max(96, report.image_size)
    sheet = contact_sheet(rows, column_labels=["input", *names], cell=cell) if rows else None

    panels: list[tuple[str, list[float | None], list[tuple[float, float] | None] | None]] = [
        ("level accuracy (classifier)", [report.levels[n].get("accuracy") for n in names], None),
        ("FID (" + report.features.split(" (")[0] + ")", [report.levels[n].get("fid") for n in names], None),
        ("colour shift, mean dE00", [report.levels[n].get("colour_shift") for n in names], None),
    ]
    if any(report.levels[n].get("coverage") for n in names):
        coverage = [report.levels[n].get("coverage") or {} for n in names]
        panels.append(
            (
                "rust coverage vs true band (line)",
                [c.get("generated_mean") for c in coverage],
                [tuple(c["true_band"]) if c.get("true_band") else None for c in coverage],
            )
        )
    else:
        panels.append(
            ("cycle L1 none->X->none", [report.levels[n]["cycle_clean"]["l1"] for n in names], None)
        )

    figure = plt.figure(figsize=(12, 8.5 if sheet is not None else 3.4))
    grid = figure.add_gridspec(
        2 if sheet is not None else 1, len(panels), height_ratios=[2.2, 1] if sheet is not None else [1]
    )
    if sheet is not None:
        top = figure.add_subplot(grid[0, :])
        top.imshow(sheet)
        top.set_axis_off()
        top.set_title("clean input and its translations", fontsize=10)
    colours = ["#c98a3c", "#a5552a", "#6b3219"]
    for column, (title, values, bands) in enumerate(panels):
        axis = figure.add_subplot(grid[-1, column])
        heights = [np.nan if v is None else float(v) for v in values]
        axis.bar(names, np.nan_to_num(heights), color=colours[: len(names)] if len(names) <= 3 else None)
        for x, value in enumerate(heights):
            height = 0.0 if np.isnan(value) else value
            label = "n/a" if np.isnan(value) else f"{value:.3g}"
            axis.text(x + 0.12, height, label, ha="left", va="bottom", fontsize=8)
        if bands:
            for x, band in enumerate(bands):
                if band is not None:
                    axis.plot([x, x], band, color="black", linewidth=3, alpha=0.6)
        axis.set_title(title, fontsize=9)
        axis.tick_params(labelsize=8)
        axis.grid(axis="y", alpha=0.3)
    figure.suptitle(f"GAN evaluation: {report.gan}", fontsize=11)
    figure.tight_layout()
    with atomic_path(path) as temp:
        figure.savefig(temp, format="png", dpi=90)
    plt.close(figure)
    return path

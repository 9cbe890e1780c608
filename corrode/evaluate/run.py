"""`evaluate(cfg)`: load what is needed, then per level run each measure group and write the report."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from corrode import levels
from corrode.errors import UsageError
from corrode.evaluate import measures
from corrode.evaluate.config import EvaluateConfig
from corrode.evaluate.data import (
    CarSet,
    DataPlan,
    coverage_bands,
    plan_data,
    read_cars,
    render_inputs,
    spread,
)
from corrode.evaluate.features import feature_space, features_of
from corrode.evaluate.measures import EvaluationCache, RealCars, RealKey, Translates
from corrode.evaluate.report import Report, level_line, write_report

if TYPE_CHECKING:
    from corrode.classification import Classifier


def _load_translator(cfg: EvaluateConfig) -> tuple[Translates, str]:
    from corrode.locate import find_model
    from corrode.translate import Translator

    gan_path = find_model(cfg.gan, "gan")
    return Translator.load(gan_path, device=cfg.device, precision=cfg.precision), str(gan_path)


def _load_classifier(cfg: EvaluateConfig, notes: list[str]) -> Classifier | None:
    from corrode.classification import Classifier
    from corrode.locate import ModelNotFoundError

    try:
        return Classifier.load(cfg.classifier, cfg.device)
    except ModelNotFoundError as exc:
        if cfg.classifier is not None:
            raise
        notes.append(f"no classifier ({exc}): level accuracy, mean level, FID and KID not measured")
        return None


def _output_folder(cfg: EvaluateConfig) -> Path | None:
    if cfg.out is not None:
        return Path(cfg.out)
    if cfg.gan is not None and Path(cfg.gan).is_dir():
        return Path(cfg.gan)
    return None


def evaluate(
    cfg: EvaluateConfig,
    *,
    translator: Translates | None = None,
    classifier: Classifier | None = None,
    log: Callable[[str], None] | None = None,
    cache: EvaluationCache | dict[Any, Any] | None = None,
) -> Report:
    """Measure the GAN named by `cfg` (or the `translator` given) and write the report files.

    `cache`: an `EvaluationCache` kept between calls on the same data (a benchmark evaluating
    checkpoints), so the real cars and their features are read and embedded once. A plain dict is
    taken as the cache's store (what earlier callers passed).
    """
    say = log or (lambda line: None)
    if isinstance(cache, dict):
        cache = EvaluationCache(real=cache)
    started = time.perf_counter()
    gan_name = str(cfg.gan) if cfg.gan is not None else "given translator"
    if translator is None:
        translator, gan_name = _load_translator(cfg)
    out = _output_folder(cfg)
    notes: list[str] = []
    if classifier is None:
        classifier = _load_classifier(cfg, notes)
    feature, feature_text = feature_space(cfg, classifier)

    plan = plan_data(cfg)
    size = int(translator.image_size)
    sources = read_cars(plan.sources, size, plan.masks_root, say, mask_for=plan.source_mask)
    if len(sources) == 0:
        raise UsageError(f"{plan.sources_folder}: none of the clean car images could be read")
    notes += _data_notes(plan)
    say(f"translating {len(sources)} clean cars at {size} px; FID/KID features: {feature_text}")
    source_tensor = sources.tensor()
    source_arrays = measures.arrays(source_tensor)
    bands = coverage_bands(plan.manifest) if plan.manifest is not None else None
    report = Report(
        gan=gan_name,
        data=str(cfg.data),
        classifier=str(classifier.path) if classifier is not None and classifier.path else None,
        features=feature_text,
        image_size=size,
        sources={"folder": str(plan.sources_folder), "count": len(sources), "held_out": plan.held_out},
        notes=notes,
        skipped=list(sources.failed),
    )
    samples: dict[str, np.ndarray] = {}
    render_cars = render_inputs(plan, sources.paths, cfg.render_checks, say) if cfg.render_checks else None
    if render_cars is None and cfg.render_checks:
        notes.append("pixels changed outside the car not measured: it needs the images' masks")

    for name in [n for n in levels.RUSTY_NAMES if n in tuple(translator.levels)]:
        key = RealKey(name, size, cfg.real_limit, str(cfg.data), str(cfg.masks), feature_text)
        real = _real_cars(cfg, plan, key, feature, classifier, cache, say)
        report.skipped += [line for line in real.cars.failed if line not in report.skipped]
        report.levels[name] = _measure_level(
            cfg, translator, classifier, feature, name, sources, source_tensor, source_arrays,
            real, bands, render_cars, report, samples,
        )  # fmt: skip
        say(level_line(name, report.levels[name]))

    report.seconds = time.perf_counter() - started
    if out is not None:
        report.folder = str(out)
        write_report(report, out, source_arrays[: cfg.samples], samples)
    return report


def _data_notes(plan: DataPlan) -> list[str]:
    notes = []
    if plan.masks_root is None:
        notes.append("no masks folder: images taken as already masked; the car is their non-black pixels")
    if not plan.held_out:
        notes.append(
            f"clean cars from {plan.sources_folder} (the GAN may have trained on them); "
            "pass --sources with held-out images for an unbiased measure"
        )
    return notes


def _real_cars(
    cfg: EvaluateConfig,
    plan: DataPlan,
    key: RealKey,
    feature: Any,
    classifier: Classifier | None,
    cache: EvaluationCache | None,
    log: Callable[[str], None],
) -> RealCars:
    """The real cars of `key.level`, their features and the classifier's accuracy on them; from the
    cache when it has them."""

    def compute() -> RealCars:
        paths = spread(sorted(plan.real[key.level]), cfg.real_limit)
        real = read_cars(paths, key.size, plan.masks_root, log)
        embedded = features_of(feature, real.tensor(), cfg.batch_size) if feature is not None else None
        accuracy = None
        if classifier is not None:
            index = levels.get(key.level).index
            accuracy = measures.classifier_accuracy(classifier, real, index, cfg.batch_size)
        return RealCars(real, embedded, accuracy)

    return compute() if cache is None else cache.real_cars(key, compute)


def _measure_level(
    cfg: EvaluateConfig,
    translator: Translates,
    classifier: Classifier | None,
    feature: Any,
    name: str,
    sources: CarSet,
    source_tensor: Any,
    source_arrays: np.ndarray,
    real: RealCars,
    bands: dict[str, tuple[float, float, float]] | None,
    render_cars: Any,
    report: Report,
    samples: dict[str, np.ndarray],
) -> dict[str, Any]:
    """Every measure group for one level, as the report's JSON-ready values."""
    index = levels.get(name).index
    translation = measures.translate_level(translator, sources, source_tensor, name, cfg.batch_size)
    fake_arrays = measures.arrays(translation.fake)
    samples[name] = fake_arrays[: cfg.samples]
    values: dict[str, Any] = {"generated": len(sources)}
    values["cycle_clean"] = measures.clean_cycle(source_arrays, translation, sources.masks)
    values["colour_shift"] = measures.colour_kept(source_arrays, fake_arrays, sources.masks)
    if real.classifier_accuracy is not None:
        report.classifier_on_real[name] = real.classifier_accuracy
    values["real_images"] = len(real.cars)
    values["cycle_level"] = measures.level_cycle(translator, real.cars, name, cfg.batch_size)
    if classifier is not None:
        values.update(measures.judged_level(classifier, translation.fake, index, cfg.batch_size))
    if feature is not None and real.features is not None and len(real.cars) >= 2 and len(sources) >= 2:
        fake_features = features_of(feature, translation.fake, cfg.batch_size)
        values.update(measures.distribution_distance(real.features, fake_features))
    elif feature is not None:
        values["fid"] = values["kid"] = None
        report.notes.append(f"{name}: FID/KID need at least two real and two generated cars")
    if bands is not None:
        values["coverage"] = measures.coverage(
            source_arrays, fake_arrays, sources.masks, real.cars, bands.get(name)
        )
    values["changed_outside_car"] = None
    if render_cars is not None:
        values["changed_outside_car"], values["render_checked"] = measures.changed_outside(
            translator, render_cars, name
        )
    return values

"""Each measure of `corrode evaluate`, one function per group, and the cache of the real cars.

The groups, per level: the translation itself (`translate_level`), none -> level -> none cycle error
(`clean_cycle`), colour kept (`colour_kept`), real level -> none -> level cycle error
(`level_cycle`), the classifier's verdict on the generated cars (`judged_level`), FID and KID
(`distribution_distance`), rust coverage against the synth manifest's true band (`coverage`), and
pixels changed outside the car by the full-size render (`changed_outside`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from corrode.evaluate.data import CarSet, RenderCars

if TYPE_CHECKING:
    import torch

    from corrode.classification import Classifier


class Translates(Protocol):
    """What evaluate needs from a translator (corrode.translate.Translator fits)."""

    image_size: int
    levels: tuple[str, ...]

    def to_level(self, images: torch.Tensor, level: str) -> torch.Tensor: ...

    def to_clean(self, images: torch.Tensor, level: str) -> torch.Tensor: ...


@dataclass(frozen=True)
class RealKey:
    """What the real cars of a level and their features depend on."""

    level: str
    size: int
    real_limit: int
    data: str
    masks: str
    features: str


@dataclass
class RealCars:
    """The real cars of one level, their FID/KID features, and the classifier's accuracy on them."""

    cars: CarSet
    features: torch.Tensor | None
    classifier_accuracy: float | None


@dataclass
class EvaluationCache:
    """Kept between `evaluate` calls on the same data (a study evaluating checkpoints): the real cars
    of each level are read and embedded once."""

    real: dict[RealKey, RealCars] = field(default_factory=dict)

    def real_cars(self, key: RealKey, compute: Callable[[], RealCars]) -> RealCars:
        if key not in self.real:
            self.real[key] = compute()
        return self.real[key]


def translate(
    translator: Translates, images: torch.Tensor, level: str, clean: bool, batch_size: int
) -> torch.Tensor:
    import torch

    outputs = []
    for start in range(0, images.shape[0], batch_size):
        batch = images[start : start + batch_size]
        result = translator.to_clean(batch, level) if clean else translator.to_level(batch, level)
        outputs.append(result.detach().float().cpu().clamp(0, 1))
    return torch.cat(outputs) if outputs else images.clone()


def arrays(images: torch.Tensor) -> np.ndarray:
    return images.permute(0, 2, 3, 1).numpy().astype(np.float64)


def stacked(images: np.ndarray) -> np.ndarray:
    """(N, S, S, ...) -> (N * S, S, ...): one tall image, so pixel means pool over all the cars."""
    return images.reshape(-1, *images.shape[2:])


def cycle_error(original: np.ndarray, reconstructed: np.ndarray, masks: np.ndarray) -> dict[str, float]:
    """L1 and PSNR over the car pixels of all images together; arrays (N, S, S, 3) in [0, 1]."""
    from corrode import metrics

    first, second, car = stacked(original), stacked(reconstructed), stacked(masks)
    return {"l1": metrics.mean_l1(first, second, car), "psnr": metrics.psnr(first, second, car)}


@dataclass
class Translation:
    """Clean cars at one level, masked (the generator never sees the background, so it stays black),
    and back to clean again."""

    fake: torch.Tensor
    rebuilt: torch.Tensor


def translate_level(
    translator: Translates, sources: CarSet, source_tensor: torch.Tensor, level: str, batch_size: int
) -> Translation:
    import torch

    fake = translate(translator, source_tensor, level, False, batch_size)
    fake = fake * torch.from_numpy(sources.masks)[:, None].float()
    rebuilt = translate(translator, fake, level, True, batch_size)
    return Translation(fake, rebuilt)


def clean_cycle(source_arrays: np.ndarray, translation: Translation, masks: np.ndarray) -> dict[str, float]:
    """none -> level -> none: L1 and PSNR over the car's pixels."""
    return cycle_error(source_arrays, arrays(translation.rebuilt), masks)


def colour_kept(source_arrays: np.ndarray, fake_arrays: np.ndarray, masks: np.ndarray) -> float:
    """Mean CIEDE2000 between input and output over car pixels that are not rust in the output."""
    from corrode import metrics

    return metrics.colour_shift(stacked(source_arrays), stacked(fake_arrays), stacked(masks))


def level_cycle(translator: Translates, real: CarSet, level: str, batch_size: int) -> dict[str, float | None]:
    """Real level -> none -> level: L1 and PSNR over the car's pixels (None without real cars)."""
    import torch

    if not len(real):
        return {"l1": None, "psnr": None}
    real_tensor = real.tensor()
    back = translate(translator, real_tensor, level, True, batch_size)
    again = translate(
        translator, back * torch.from_numpy(real.masks)[:, None].float(), level, False, batch_size
    )
    return cycle_error(arrays(real_tensor), arrays(again), real.masks)


def classifier_accuracy(classifier: Classifier, cars: CarSet, index: int, batch_size: int) -> float | None:
    """The share of `cars` the classifier puts at level `index` (None without cars)."""
    if not len(cars):
        return None
    predicted = classifier.predict(cars.tensor(), batch_size=batch_size).argmax(dim=1)
    return float((predicted == index).float().mean())


def judged_level(classifier: Classifier, fake: torch.Tensor, index: int, batch_size: int) -> dict[str, Any]:
    """The classifier's verdict on generated cars: accuracy, mean level, share per predicted level."""
    import torch

    from corrode.classification import expected_level

    probabilities = classifier.predict(fake, batch_size=batch_size)
    predicted = probabilities.argmax(dim=1)
    counts = torch.bincount(predicted, minlength=len(classifier.names)).tolist()
    return {
        "accuracy": float((predicted == index).float().mean()),
        "mean_level": float(predicted.float().mean()),
        "mean_expected_level": float(expected_level(probabilities).mean()),
        "predicted": {n: c / len(predicted) for n, c in zip(classifier.names, counts, strict=True)},
    }


def distribution_distance(real_features: torch.Tensor, fake_features: torch.Tensor) -> dict[str, float]:
    """FID and KID (with its standard deviation) between real and generated cars' features."""
    from corrode import metrics

    kid, kid_std = metrics.kernel_distance_of_features(real_features, fake_features)
    return {
        "fid": metrics.frechet_distance_of_features(real_features, fake_features),
        "kid": kid,
        "kid_std": kid_std,
    }


def coverage(
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


def changed_outside(translator: Translates, cars: RenderCars, level: str) -> tuple[int, int]:
    """Pixels outside the car that differ between the photo and its composited render, summed."""
    from corrode import metrics
    from corrode.renderer import Renderer

    renderer = Renderer(translator, composite=True)
    changed = 0
    for rendering in renderer.render(cars.images, [level], cars.masks):
        changed += metrics.changed_pixels(rendering.image, rendering.outputs[level], ~rendering.mask)
    return changed, len(cars.images)

"""Quality measures as plain functions: classification scores, image differences, FID/KID, rust coverage.

Classification scores take level indices (0 none .. 3 severe). Image functions take `(H, W, 3)`
float arrays in [0, 1] (or `(B, 3, H, W)` tensors where they say so) and an optional `(H, W)` bool
mask of the pixels to measure.

Rust pixel test (`rust_pixels`), used for the colour-kept measure and the coverage estimate: a pixel
is rust when its colour is a rust colour - hue between 0 and 45 degrees (red through orange to
brown), saturation at least 0.3, value between 0.08 and 0.9 (not black, not a highlight) - and, when
the image it was made from is given, it also differs from that image's pixel by CIEDE2000 >= 10
(so the paint of a red or orange car is not mistaken for rust: rust is what the generator *added*).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch
    from torch import nn

RUST_HUE_DEGREES = (0.0, 45.0)
RUST_MIN_SATURATION = 0.3
RUST_VALUE_RANGE = (0.08, 0.9)
RUST_MIN_DELTA_E = 10.0


# ---------------------------------------------------------------------------------------------
# Classification.


def confusion_matrix(true: Sequence[int], predicted: Sequence[int], num_classes: int) -> np.ndarray:
    """(num_classes, num_classes) int counts: rows are true levels, columns predicted levels."""
    true_array = np.asarray(true, dtype=np.int64).ravel()
    predicted_array = np.asarray(predicted, dtype=np.int64).ravel()
    if true_array.shape != predicted_array.shape:
        raise ValueError(f"{true_array.size} true labels but {predicted_array.size} predictions")
    for name, values in (("true", true_array), ("predicted", predicted_array)):
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(f"{name} labels must lie in 0..{num_classes - 1}")
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (true_array, predicted_array), 1)
    return matrix


def accuracy(matrix: np.ndarray) -> float:
    total = matrix.sum()
    return float(np.trace(matrix) / total) if total else float("nan")


def recall_per_class(matrix: np.ndarray) -> np.ndarray:
    """Recall of each true class; NaN for a class with no true examples."""
    support = matrix.sum(axis=1).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(matrix) / support, np.nan)


def precision_per_class(matrix: np.ndarray) -> np.ndarray:
    """Precision of each predicted class; NaN for a class never predicted."""
    predicted = matrix.sum(axis=0).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(predicted > 0, np.diag(matrix) / predicted, np.nan)


def f1_per_class(matrix: np.ndarray) -> np.ndarray:
    """F1 of each class: 0 when it has examples or predictions but no hit, NaN when it has neither."""
    true_positive = np.diag(matrix).astype(float)
    support = matrix.sum(axis=1)
    predicted = matrix.sum(axis=0)
    denominator = (support + predicted).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, 2.0 * true_positive / denominator, np.nan)


def macro_f1(matrix: np.ndarray) -> float:
    """Mean F1 over the classes that occur among the true labels or the predictions."""
    scores = f1_per_class(matrix)
    present = ~np.isnan(scores)
    return float(scores[present].mean()) if present.any() else float("nan")


def mean_absolute_error(true: Sequence[int], predicted: Sequence[float]) -> float:
    """Mean |true - predicted| in levels (predicted may be fractional, e.g. an expected level)."""
    true_array = np.asarray(true, dtype=float).ravel()
    predicted_array = np.asarray(predicted, dtype=float).ravel()
    if true_array.shape != predicted_array.shape:
        raise ValueError(f"{true_array.size} true labels but {predicted_array.size} predictions")
    return float(np.abs(true_array - predicted_array).mean()) if true_array.size else float("nan")


def classification_report(
    true: Sequence[int], predicted: Sequence[int], names: Sequence[str]
) -> dict[str, object]:
    """Accuracy, macro-F1, per-level recall, MAE in levels and the confusion matrix, JSON-ready."""
    matrix = confusion_matrix(true, predicted, len(names))
    recall = recall_per_class(matrix)
    return {
        "accuracy": accuracy(matrix),
        "macro_f1": macro_f1(matrix),
        "mae_levels": mean_absolute_error(true, predicted),
        "recall": {name: _json_float(value) for name, value in zip(names, recall, strict=True)},
        "confusion": matrix.tolist(),
    }


def expected_calibration_error(probabilities: np.ndarray, true: Sequence[int], bins: int = 15) -> float:
    """ECE of the top choice: sum over equal-width confidence bins of |accuracy - mean confidence|
    weighted by the bin's share of the images (Guo et al. 2017; 15 bins as there).

    `probabilities` is `(N, K)` (rows summing to 1), `true` the N class indices. A bin holds the
    confidences in `(b / bins, (b + 1) / bins]`; 0 for a perfectly calibrated model, NaN for N = 0.
    """
    probabilities = np.asarray(probabilities, dtype=float)
    true_array = np.asarray(true, dtype=np.int64).ravel()
    if probabilities.ndim != 2 or probabilities.shape[0] != true_array.size:
        raise ValueError(f"expected ({true_array.size}, K) probabilities, got {probabilities.shape}")
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    if true_array.size == 0:
        return float("nan")
    confidence = probabilities.max(axis=1)
    correct = (probabilities.argmax(axis=1) == true_array).astype(float)
    which = np.clip(np.ceil(confidence * bins).astype(np.int64) - 1, 0, bins - 1)
    error = 0.0
    for index in np.unique(which):
        members = which == index
        error += abs(correct[members].mean() - confidence[members].mean()) * members.mean()
    return float(error)


def fit_temperature(logits: np.ndarray, true: Sequence[int], low: float = 0.05, high: float = 20.0) -> float:
    """The temperature T in [`low`, `high`] that minimises the mean negative log-likelihood of
    softmax(`logits` / T) for the `true` class indices (Guo et al. 2017's temperature scaling).

    One parameter, so fitting it on a validation split hardly overfits; it rescales confidence and
    leaves every argmax, so accuracy and recall do not move. The NLL is convex in 1 / T, so a golden-
    section search over log T finds the minimum. 1.0 for N = 0.
    """
    logits = np.asarray(logits, dtype=np.float64)
    true_array = np.asarray(true, dtype=np.int64).ravel()
    if logits.ndim != 2 or logits.shape[0] != true_array.size:
        raise ValueError(f"expected ({true_array.size}, K) logits, got {logits.shape}")
    if not 0 < low < high:
        raise ValueError(f"expected 0 < low < high, got {low} and {high}")
    if true_array.size == 0:
        return 1.0
    picked = logits[np.arange(true_array.size), true_array]

    def negative_log_likelihood(log_temperature: float) -> float:
        scaled = logits / np.exp(log_temperature)
        peak = scaled.max(axis=1)
        log_sum = peak + np.log(np.exp(scaled - peak[:, None]).sum(axis=1))
        return float((log_sum - picked / np.exp(log_temperature)).mean())

    ratio = (np.sqrt(5.0) - 1.0) / 2.0
    left, right = np.log(low), np.log(high)
    inner_left, inner_right = right - ratio * (right - left), left + ratio * (right - left)
    value_left, value_right = negative_log_likelihood(inner_left), negative_log_likelihood(inner_right)
    for _ in range(80):
        if value_left <= value_right:
            right, inner_right, value_right = inner_right, inner_left, value_left
            inner_left = right - ratio * (right - left)
            value_left = negative_log_likelihood(inner_left)
        else:
            left, inner_left, value_left = inner_left, inner_right, value_right
            inner_right = left + ratio * (right - left)
            value_right = negative_log_likelihood(inner_right)
    return float(np.exp((left + right) / 2.0))


def _json_float(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


# ---------------------------------------------------------------------------------------------
# Image differences.


def _pixels(values: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    if mask is None:
        return values.reshape(-1, *values.shape[2:]) if values.ndim >= 2 else values
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != values.shape[:2]:
        raise ValueError(f"mask is {mask.shape} but the image is {values.shape[:2]}")
    return values[mask]


def _check_pair(first: np.ndarray, second: np.ndarray) -> None:
    if first.shape != second.shape:
        raise ValueError(f"images differ in shape: {first.shape} and {second.shape}")


def delta_e_map(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """(H, W) CIEDE2000 colour difference between two `(H, W, 3)` RGB images in [0, 1]."""
    from skimage.color import deltaE_ciede2000, rgb2lab

    _check_pair(first, second)
    first_lab = rgb2lab(np.clip(np.asarray(first, dtype=np.float64), 0.0, 1.0))
    second_lab = rgb2lab(np.clip(np.asarray(second, dtype=np.float64), 0.0, 1.0))
    return deltaE_ciede2000(first_lab, second_lab, channel_axis=-1)


def mean_delta_e(first: np.ndarray, second: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean CIEDE2000 over the `mask` pixels (all pixels without one); NaN when the mask is empty."""
    values = _pixels(delta_e_map(first, second), mask)
    return float(values.mean()) if values.size else float("nan")


def mean_l1(first: np.ndarray, second: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean absolute difference over the `mask` pixels and channels (values in [0, 1])."""
    _check_pair(first, second)
    values = _pixels(np.abs(np.asarray(first, dtype=np.float64) - np.asarray(second, dtype=np.float64)), mask)
    return float(values.mean()) if values.size else float("nan")


def psnr(first: np.ndarray, second: np.ndarray, mask: np.ndarray | None = None, peak: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB over the `mask` pixels; inf for identical images."""
    _check_pair(first, second)
    squared = (np.asarray(first, dtype=np.float64) - np.asarray(second, dtype=np.float64)) ** 2
    values = _pixels(squared, mask)
    if not values.size:
        return float("nan")
    error = float(values.mean())
    return float("inf") if error == 0 else float(10.0 * np.log10(peak * peak / error))


def changed_pixels(first: np.ndarray, second: np.ndarray, mask: np.ndarray | None = None) -> int:
    """How many `mask` pixels differ at all between two images of the same shape (any channel)."""
    _check_pair(first, second)
    different = np.any(np.asarray(first) != np.asarray(second), axis=-1)
    return int(_pixels(different, mask).sum())


# ---------------------------------------------------------------------------------------------
# Rust.


def rust_colour(image: np.ndarray) -> np.ndarray:
    """(H, W) bool: pixels of a rust colour (hue, saturation and value as in the module doc)."""
    from skimage.color import rgb2hsv

    hsv = rgb2hsv(np.clip(np.asarray(image, dtype=np.float64), 0.0, 1.0))
    hue = hsv[..., 0] * 360.0
    saturation, value = hsv[..., 1], hsv[..., 2]
    return (
        (hue >= RUST_HUE_DEGREES[0])
        & (hue <= RUST_HUE_DEGREES[1])
        & (saturation >= RUST_MIN_SATURATION)
        & (value >= RUST_VALUE_RANGE[0])
        & (value <= RUST_VALUE_RANGE[1])
    )


def rust_pixels(image: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
    """(H, W) bool rust pixels of `image`; with `reference` (what it was made from) only added rust."""
    rust = rust_colour(image)
    if reference is not None:
        rust &= delta_e_map(image, reference) >= RUST_MIN_DELTA_E
    return rust


def rust_coverage(image: np.ndarray, car: np.ndarray, reference: np.ndarray | None = None) -> float:
    """Fraction of the `car` pixels that are rust (see `rust_pixels`); NaN for an empty car mask."""
    car = np.asarray(car, dtype=bool)
    total = int(car.sum())
    if total == 0:
        return float("nan")
    return float((rust_pixels(image, reference) & car).sum() / total)


def colour_shift(source: np.ndarray, output: np.ndarray, car: np.ndarray) -> float:
    """Mean CIEDE2000 between `source` and `output` over car pixels that are not rust in `output`.

    The paint the generator should have kept; NaN when every car pixel became rust.
    """
    kept = np.asarray(car, dtype=bool) & ~rust_pixels(output, source)
    return mean_delta_e(source, output, kept)


# ---------------------------------------------------------------------------------------------
# FID and KID in a given feature space.


def feature_module(extract: Callable[[torch.Tensor], torch.Tensor], num_features: int) -> nn.Module:
    """A `(B, 3, H, W) [0, 1] -> (B, F)` feature function as the nn.Module torchmetrics wants."""
    from torch import nn

    class FeatureExtractor(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            # torchmetrics reads this instead of probing the module with a 299 px dummy image.
            self.num_features = num_features

        def forward(self, images: torch.Tensor) -> torch.Tensor:
            return extract(images)

    return FeatureExtractor()


def frechet_distance_of_features(real: torch.Tensor, fake: torch.Tensor) -> float:
    """FID between two sets of feature vectors `(N, F)` and `(M, F)`; needs N, M >= 2.

    With fewer vectors than dimensions (a few hundred cars in a 1280-d space) the covariances have
    rank < F, and tr sqrt(S1 S2) is exactly the sum of the singular values of the small N x M matrix
    A1 A2^T / sqrt((N-1)(M-1)) (A: centred features): milliseconds instead of an F x F
    eigen-decomposition (10 s at F = 1280 on one CPU thread). Otherwise torchmetrics computes it.
    Both give the same number (tests/test_metrics.py checks).
    """
    import torch

    if real.shape[0] < 2 or fake.shape[0] < 2:
        raise ValueError("FID needs at least two feature vectors on each side")
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"feature sizes differ: {real.shape[1]} and {fake.shape[1]}")
    dimensions = real.shape[1]
    if min(real.shape[0], fake.shape[0]) >= dimensions:
        identity = feature_module(lambda features: features, dimensions)
        return frechet_distance(real, fake, identity)
    first, second = real.double(), fake.double()
    mean_first, mean_second = first.mean(0), second.mean(0)
    centred_first, centred_second = first - mean_first, second - mean_second
    scale_first, scale_second = first.shape[0] - 1, second.shape[0] - 1
    trace_first = float((centred_first**2).sum()) / scale_first
    trace_second = float((centred_second**2).sum()) / scale_second
    cross = centred_first @ centred_second.T / math.sqrt(scale_first * scale_second)
    trace_root = float(torch.linalg.svdvals(cross).sum())
    distance = float(((mean_first - mean_second) ** 2).sum()) + trace_first + trace_second - 2.0 * trace_root
    return max(distance, 0.0)


def kernel_distance_of_features(
    real: torch.Tensor, fake: torch.Tensor, *, subsets: int = 50, subset_size: int = 100, seed: int = 0
) -> tuple[float, float]:
    """KID (mean, std) between two sets of feature vectors, by torchmetrics."""
    identity = feature_module(lambda features: features, real.shape[1])
    return kernel_distance(real, fake, identity, subsets=subsets, subset_size=subset_size, seed=seed)


def _batches(images: torch.Tensor, batch_size: int):
    for start in range(0, images.shape[0], batch_size):
        yield images[start : start + batch_size]


def frechet_distance(
    real: torch.Tensor, fake: torch.Tensor, feature: nn.Module, *, batch_size: int = 64
) -> float:
    """FID between two `(N, 3, H, W)` float [0, 1] image sets in `feature`'s space (torchmetrics).

    `feature` maps `(B, 3, H, W)` [0, 1] images to `(B, F)` and has a `num_features` attribute.
    Needs at least two images on each side.
    """
    import torch
    from torchmetrics.image.fid import FrechetInceptionDistance

    metric = FrechetInceptionDistance(feature=feature, normalize=True)
    with torch.inference_mode():
        for batch in _batches(real, batch_size):
            metric.update(batch, real=True)
        for batch in _batches(fake, batch_size):
            metric.update(batch, real=False)
        return float(metric.compute())


def kernel_distance(
    real: torch.Tensor,
    fake: torch.Tensor,
    feature: nn.Module,
    *,
    batch_size: int = 64,
    subsets: int = 50,
    subset_size: int = 100,
    seed: int = 0,
) -> tuple[float, float]:
    """KID (mean, std over subsets) between two image sets in `feature`'s space (torchmetrics).

    `subset_size` is capped at the smaller set's size; needs at least two images on each side.
    """
    import torch
    from torchmetrics.image.kid import KernelInceptionDistance

    size = min(subset_size, real.shape[0], fake.shape[0])
    if size < 2:
        raise ValueError("KID needs at least two images on each side")
    with warnings.catch_warnings():
        # It warns that it keeps every feature vector: intended, the sets here are small.
        warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
        metric = KernelInceptionDistance(feature=feature, normalize=True, subsets=subsets, subset_size=size)
    state = torch.get_rng_state()
    torch.manual_seed(seed)  # torchmetrics draws the subsets from the global generator
    try:
        with torch.inference_mode():
            for batch in _batches(real, batch_size):
                metric.update(batch, real=True)
            for batch in _batches(fake, batch_size):
                metric.update(batch, real=False)
            mean, std = metric.compute()
    finally:
        torch.set_rng_state(state)
    return float(mean), float(std)


def rust_coherence(rust: np.ndarray) -> float:
    """Mean share of each rust pixel's 8 neighbours that are rust too: near 1 for solid patches,
    near 0 for isolated speckle (an image border counts as no rust). NaN without rust pixels."""
    rust = np.asarray(rust, dtype=bool)
    if not rust.any():
        return float("nan")
    padded = np.pad(rust, 1).astype(np.int32)
    height, width = rust.shape
    neighbours = sum(
        padded[1 + dy : 1 + dy + height, 1 + dx : 1 + dx + width]
        for dy in (-1, 0, 1)
        for dx in (-1, 0, 1)
        if dy or dx
    )
    return float(neighbours[rust].mean() / 8.0)

"""corrode.metrics on known inputs: classification scores, colour differences, FID/KID, rust tests."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from corrode import metrics

TRUE = [0, 0, 0, 1, 1, 2, 3, 3]
PREDICTED = [0, 0, 1, 1, 2, 2, 3, 0]


def test_confusion_matrix_by_hand():
    expected = np.array(
        [
            [2, 1, 0, 0],
            [0, 1, 1, 0],
            [0, 0, 1, 0],
            [1, 0, 0, 1],
        ]
    )
    matrix = metrics.confusion_matrix(TRUE, PREDICTED, 4)
    np.testing.assert_array_equal(matrix, expected)
    assert metrics.accuracy(matrix) == pytest.approx(5 / 8)


def test_macro_f1_known_answer_and_sklearn_agrees():
    matrix = metrics.confusion_matrix(TRUE, PREDICTED, 4)
    # Per class: none 2*2/(3+3)=2/3, mild 2*1/(2+2)=1/2, moderate 2*1/(1+2)=2/3, severe 2*1/(2+1)=2/3.
    assert metrics.macro_f1(matrix) == pytest.approx((2 / 3 + 1 / 2 + 2 / 3 + 2 / 3) / 4)
    from sklearn.metrics import f1_score

    assert metrics.macro_f1(matrix) == pytest.approx(f1_score(TRUE, PREDICTED, average="macro"))


def test_recall_and_mae():
    matrix = metrics.confusion_matrix(TRUE, PREDICTED, 4)
    np.testing.assert_allclose(metrics.recall_per_class(matrix), [2 / 3, 1 / 2, 1.0, 1 / 2])
    # |errors| = 0,0,1,0,1,0,0,3 -> 5/8
    assert metrics.mean_absolute_error(TRUE, PREDICTED) == pytest.approx(5 / 8)


def test_absent_class_is_nan_not_zero():
    matrix = metrics.confusion_matrix([0, 0, 1], [0, 0, 1], 4)
    recall = metrics.recall_per_class(matrix)
    assert recall[0] == 1.0 and math.isnan(recall[2]) and math.isnan(recall[3])
    assert metrics.macro_f1(matrix) == pytest.approx(1.0)  # only the levels that occur count


def test_classification_report_is_json_ready():
    import json

    report = metrics.classification_report([0, 1], [0, 0], ("none", "mild", "moderate", "severe"))
    text = json.dumps(report)
    assert report["recall"]["moderate"] is None and '"confusion"' in text


@pytest.mark.parametrize(
    ("true", "predicted", "classes"),
    [([0, 1], [0], 4), ([0, 4], [0, 1], 4), ([-1], [0], 4)],
)
def test_bad_labels_raise(true, predicted, classes):
    with pytest.raises(ValueError):
        metrics.confusion_matrix(true, predicted, classes)


def test_delta_e_identical_is_zero_and_black_white_is_100():
    rng = np.random.default_rng(0)
    image = rng.random((16, 16, 3))
    assert metrics.mean_delta_e(image, image) == 0.0
    black, white = np.zeros((4, 4, 3)), np.ones((4, 4, 3))
    assert metrics.mean_delta_e(black, white) == pytest.approx(100.0, abs=1e-3)


def test_delta_e_only_over_the_mask():
    first = np.zeros((4, 4, 3))
    second = first.copy()
    second[0, 0] = 1.0
    mask = np.zeros((4, 4), bool)
    mask[2:, 2:] = True
    assert metrics.mean_delta_e(first, second, mask) == 0.0
    assert math.isnan(metrics.mean_delta_e(first, second, np.zeros((4, 4), bool)))
    with pytest.raises(ValueError):
        metrics.mean_delta_e(first, second, np.ones((3, 3), bool))


def test_psnr_and_l1_known_answers():
    first = np.full((8, 8, 3), 0.5)
    second = first + 0.1
    assert metrics.psnr(first, second) == pytest.approx(20.0)
    assert metrics.psnr(first, first) == math.inf
    assert metrics.mean_l1(first, second) == pytest.approx(0.1)
    with pytest.raises(ValueError):
        metrics.psnr(first, second[:4])


def test_changed_pixels_counts_pixels_not_channels():
    first = np.zeros((5, 5, 3), np.uint8)
    second = first.copy()
    second[1, 1] = (1, 1, 1)
    second[3, 3, 0] = 9
    assert metrics.changed_pixels(first, second) == 2
    outside = np.ones((5, 5), bool)
    outside[1, 1] = False
    assert metrics.changed_pixels(first, second, outside) == 1


def _swatch(rgb: tuple[int, int, int], size: int = 4) -> np.ndarray:
    return np.broadcast_to(np.asarray(rgb, float) / 255.0, (size, size, 3)).copy()


def test_rust_colour_test():
    assert metrics.rust_colour(_swatch((178, 88, 36))).all()  # orange rust
    assert metrics.rust_colour(_swatch((72, 38, 22))).all()  # dark rust
    assert not metrics.rust_colour(_swatch((30, 80, 200))).any()  # blue paint
    assert not metrics.rust_colour(_swatch((128, 128, 128))).any()  # grey, no saturation
    assert not metrics.rust_colour(_swatch((5, 2, 1))).any()  # near black


def test_rust_needs_a_change_when_the_input_is_given():
    red_car = _swatch((180, 40, 30))
    assert metrics.rust_colour(red_car).all()
    assert not metrics.rust_pixels(red_car, reference=red_car).any()  # its own paint is not rust
    blue_car = _swatch((30, 80, 200), 8)
    rusty = blue_car.copy()
    rusty[:4] = np.asarray((178, 88, 36)) / 255.0
    car = np.ones((8, 8), bool)
    assert metrics.rust_coverage(rusty, car, reference=blue_car) == pytest.approx(0.5)
    # Only the paint the generator should have kept counts: untouched paint, shift 0.
    assert metrics.colour_shift(blue_car, rusty, car) == pytest.approx(0.0)
    greyed = np.full_like(blue_car, 0.45)  # the paper: bright blue turned into a common grey
    assert metrics.colour_shift(blue_car, greyed, car) > 10
    assert math.isnan(metrics.rust_coverage(rusty, np.zeros((8, 8), bool)))


def _features():
    torch.manual_seed(0)
    network = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, stride=2), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()
    ).eval()
    return metrics.feature_module(lambda images: network(images), 8)


def test_fid_of_a_set_with_itself_is_zero_and_grows_with_a_shift():
    generator = torch.Generator().manual_seed(1)
    images = torch.rand(48, 3, 16, 16, generator=generator)
    feature = _features()
    same = metrics.frechet_distance(images, images.clone(), feature, batch_size=16)
    assert abs(same) < 1e-3
    shifted = metrics.frechet_distance(images, (images * 0.5).clamp(0, 1), feature)
    assert shifted > 100 * max(abs(same), 1e-6)


def test_kid_of_a_set_with_itself_is_about_zero():
    generator = torch.Generator().manual_seed(2)
    images = torch.rand(24, 3, 16, 16, generator=generator)
    feature = _features()
    mean, _ = metrics.kernel_distance(images, images.clone(), feature, subsets=5, subset_size=10)
    other, _ = metrics.kernel_distance(images, (images * 0.3).clamp(0, 1), feature, subsets=5, subset_size=10)
    assert abs(mean) < 0.1 * other
    with pytest.raises(ValueError):
        metrics.kernel_distance(images[:1], images, feature)


def test_fast_fid_of_features_equals_torchmetrics():
    generator = torch.Generator().manual_seed(3)
    real = torch.randn(20, 64, generator=generator, dtype=torch.float64)
    fake = torch.randn(12, 64, generator=generator, dtype=torch.float64) * 1.5 + 0.3
    identity = metrics.feature_module(lambda features: features, 64)
    reference = metrics.frechet_distance(real, fake, identity)
    assert metrics.frechet_distance_of_features(real, fake) == pytest.approx(reference, rel=1e-4)
    assert metrics.frechet_distance_of_features(real, real.clone()) == pytest.approx(0.0, abs=1e-6)
    many = torch.randn(80, 8, generator=generator, dtype=torch.float64)  # more vectors than dimensions
    assert metrics.frechet_distance_of_features(many, many + 1.0) == pytest.approx(8.0, rel=1e-3)
    with pytest.raises(ValueError):
        metrics.frechet_distance_of_features(real[:1], fake)


def test_expected_calibration_error_known_answers():
    # Four images at confidence 0.9 (in bin 14 of 15), three right: |0.75 - 0.9| = 0.15 over all of them.
    probabilities = np.array([[0.9, 0.1, 0.0, 0.0]] * 4)
    assert metrics.expected_calibration_error(probabilities, [0, 0, 0, 1]) == pytest.approx(0.15)
    # Two bins: confidence 1.0 and right (gap 0), confidence 0.5 and wrong (gap 0.5), half each: 0.25.
    probabilities = np.array([[1.0, 0.0], [0.5, 0.5]])
    assert metrics.expected_calibration_error(probabilities, [0, 1], bins=15) == pytest.approx(0.25)
    # Perfectly calibrated: confidence 0.6 in five, three of them right.
    probabilities = np.array([[0.6, 0.4]] * 5)
    assert metrics.expected_calibration_error(probabilities, [0, 0, 0, 1, 1]) == pytest.approx(0.0)
    # One bin holds everything: ECE is |accuracy - mean confidence|.
    rng = np.random.default_rng(0)
    raw = rng.random((50, 3))
    probabilities = raw / raw.sum(1, keepdims=True)
    true = rng.integers(0, 3, 50)
    one_bin = abs((probabilities.argmax(1) == true).mean() - probabilities.max(1).mean())
    assert metrics.expected_calibration_error(probabilities, true, bins=1) == pytest.approx(one_bin)


def test_expected_calibration_error_bad_inputs():
    assert np.isnan(metrics.expected_calibration_error(np.zeros((0, 4)), []))
    with pytest.raises(ValueError):
        metrics.expected_calibration_error(np.ones((3, 4)) / 4, [0, 1])
    with pytest.raises(ValueError):
        metrics.expected_calibration_error(np.ones((2, 4)) / 4, [0, 1], bins=0)


def test_rust_coherence_tells_patches_from_speckle() -> None:
    from corrode.metrics import rust_coherence

    patch = np.zeros((8, 8), bool)
    patch[2:5, 2:5] = True  # a 3x3 patch: the centre has 8 rust neighbours, edges 5, corners 3
    assert rust_coherence(patch) == pytest.approx((8 + 4 * 5 + 4 * 3) / 9 / 8)
    speckle = np.zeros((8, 8), bool)
    speckle[::3, ::3] = True  # isolated dots
    assert rust_coherence(speckle) == 0.0
    assert np.isnan(rust_coherence(np.zeros((4, 4), bool)))


def test_fit_temperature_recovers_the_scale_of_calibrated_logits():
    from corrode.metrics import expected_calibration_error, fit_temperature

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3000, 4)) * 2
    probabilities = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    true = np.array([rng.choice(4, p=row) for row in probabilities])
    # Logits drawn calibrated at T = 1, then made three times too confident: the fit undoes it.
    assert fit_temperature(logits, true) == pytest.approx(1.0, abs=0.1)
    temperature = fit_temperature(logits * 3, true)
    assert temperature == pytest.approx(3.0, rel=0.1)
    scaled = logits * 3 / temperature
    calibrated = np.exp(scaled) / np.exp(scaled).sum(1, keepdims=True)
    overconfident = np.exp(logits * 3) / np.exp(logits * 3).sum(1, keepdims=True)
    assert expected_calibration_error(calibrated, true) < expected_calibration_error(overconfident, true)
    assert fit_temperature(np.zeros((0, 4)), []) == 1.0
    with pytest.raises(ValueError):
        fit_temperature(np.zeros((3, 4)), [0, 1])

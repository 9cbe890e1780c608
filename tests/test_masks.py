"""The mask optimizer: known answers, the border case, exact equivalence with scikit-image."""

import numpy as np
import pytest
from skimage.morphology import remove_small_holes, remove_small_objects

from corrode.masks import (
    FALLBACK_THRESHOLD,
    SANE_THRESHOLDS,
    MaskError,
    mask_probabilities,
    optimize_mask,
    small_region_limit,
    threshold_probability,
)


def _car(height: int = 40, width: int = 60) -> np.ndarray:
    mask = np.zeros((height, width), bool)
    mask[10:30, 10:50] = True
    return mask


def test_small_region_limit_is_strictly_below_the_fraction() -> None:
    assert small_region_limit((10, 10), 0.1) == 9  # 10 pixels is not "less than 10%"
    assert small_region_limit((10, 100), 0.1) == 99  # 0.1 * 1000 is 100.00000000000001 in floats
    assert small_region_limit((7, 3), 0.1) == 2  # 2.1 -> sizes 1 and 2
    assert small_region_limit((10, 10), 0.0) == 0


def test_fills_a_hole_and_removes_a_speck() -> None:
    mask = _car()
    mask[18:22, 20:24] = False  # hole of 16 px
    mask[2:4, 55:57] = True  # speck of 4 px
    result = optimize_mask(mask, 0.1)
    assert np.array_equal(result.mask, _car())
    assert (result.holes_filled, result.specks_removed) == (1, 1)


def test_border_touching_background_notch_is_filled() -> None:
    # The car reaches the left border except for a small notch: that notch is a background region
    # touching the border, and the paper's "all background regions" fills it too.
    mask = np.zeros((40, 60), bool)
    mask[5:35, 0:45] = True
    mask[15:18, 0:3] = False  # 9 px notch open to the left border
    result = optimize_mask(mask, 0.1)
    assert result.mask[15:18, 0:3].all()
    assert result.holes_filled == 1
    # The large background around the car also touches the border and stays background.
    assert not result.mask[0, 50] and result.mask.sum() == 30 * 45
    # scikit-image agrees: remove_small_holes is remove_small_objects on the inverse, with no
    # special case for regions open to the border.
    limit = small_region_limit(mask.shape, 0.1)
    assert remove_small_holes(mask, max_size=limit)[15:18, 0:3].all()


def test_large_regions_are_kept() -> None:
    mask = np.zeros((20, 20), bool)
    mask[:, :10] = True  # half the image: neither step touches it
    result = optimize_mask(mask, 0.1)
    assert np.array_equal(result.mask, mask) and (result.holes_filled, result.specks_removed) == (0, 0)


def test_connectivity_decides_what_a_region_is() -> None:
    mask = np.zeros((20, 20), bool)  # limit at 10%: 39 px
    mask[2:7, 2:7] = True
    mask[7:12, 7:12] = True  # touches the first square only at a corner
    mask[15, 2] = True  # a 1 px speck
    four = optimize_mask(mask, 0.1, connectivity=1)  # two 25 px squares: both small
    eight = optimize_mask(mask, 0.1, connectivity=2)  # the squares join into one 50 px region
    assert not four.mask.any() and four.specks_removed == 3
    assert eight.mask.sum() == 50 and eight.specks_removed == 1
    assert four.holes_filled == eight.holes_filled == 0


def test_empty_and_full_masks() -> None:
    empty = optimize_mask(np.zeros((8, 8), bool))
    full = optimize_mask(np.ones((8, 8), bool))
    assert not empty.mask.any() and full.mask.all()
    assert (empty.holes_filled, empty.specks_removed, full.holes_filled, full.specks_removed) == (0,) * 4


def test_fraction_zero_changes_nothing_and_input_is_not_modified() -> None:
    rng = np.random.default_rng(1)
    mask = rng.random((30, 30)) < 0.5
    before = mask.copy()
    assert np.array_equal(optimize_mask(mask, 0.0).mask, mask)
    optimize_mask(mask, 0.2)
    assert np.array_equal(mask, before)


@pytest.mark.parametrize("connectivity", [1, 2])
def test_exactly_equals_scikit_image_on_random_masks(connectivity: int) -> None:
    rng = np.random.default_rng(connectivity)
    for _ in range(400):
        height, width = rng.integers(1, 24, size=2)
        mask = rng.random((height, width)) < rng.random()
        fraction = float(rng.choice([0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0]))
        limit = small_region_limit(mask.shape, fraction)
        expected = remove_small_objects(
            remove_small_holes(mask, max_size=limit, connectivity=connectivity),
            max_size=limit,
            connectivity=connectivity,
        )
        result = optimize_mask(mask, fraction, connectivity)
        assert result.mask.dtype == bool
        assert np.array_equal(result.mask, expected), (mask.astype(int), fraction)


def test_equals_scikit_image_with_many_regions() -> None:
    # Salt-and-pepper noise on a car: thousands of regions, the label-mapping path.
    rng = np.random.default_rng(7)
    car = np.zeros((120, 180), bool)
    car[20:100, 30:150] = True
    mask = car ^ (rng.random(car.shape) < 0.05)
    limit = small_region_limit(mask.shape, 0.1)
    expected = remove_small_objects(remove_small_holes(mask, max_size=limit), max_size=limit)
    result = optimize_mask(mask, 0.1)
    assert np.array_equal(result.mask, expected)
    assert result.holes_filled > 50 and result.specks_removed > 50


def test_bad_arguments() -> None:
    with pytest.raises(MaskError, match="2-D"):
        optimize_mask(np.zeros((2, 2, 2), bool))
    with pytest.raises(MaskError, match="fraction"):
        optimize_mask(np.zeros((2, 2), bool), 1.5)
    with pytest.raises(MaskError, match="connectivity"):
        optimize_mask(np.zeros((2, 2), bool), 0.1, connectivity=4)


def test_otsu_adapts_to_an_underconfident_model() -> None:
    rng = np.random.default_rng(3)
    probabilities = rng.normal(0.08, 0.02, (40, 60))
    probabilities[_car()] = rng.normal(0.42, 0.03, int(_car().sum()))  # the car, below 0.5
    probabilities = np.clip(probabilities, 0, 1).astype(np.float32)
    mask, threshold = threshold_probability(probabilities)
    assert 0.15 < threshold < 0.35  # in the valley between the two modes, not the fallback
    assert np.array_equal(mask, _car())


def test_two_spike_maps_fall_back_to_one_half_with_the_same_mask() -> None:
    # Otsu puts a two-valued map's threshold just above the lower spike (outside 0.1 to 0.9):
    # the fallback 0.5 gives the same mask, as would any value between the spikes.
    probabilities = np.where(_car(), 0.99, 0.01).astype(np.float32)
    mask, threshold = threshold_probability(probabilities)
    assert threshold == FALLBACK_THRESHOLD and np.array_equal(mask, _car())


def test_threshold_falls_back_to_one_half() -> None:
    constant = np.full((10, 10), 0.7, np.float32)
    mask, threshold = threshold_probability(constant)
    assert threshold == FALLBACK_THRESHOLD and mask.all()
    # All background with a little noise: Otsu would split the noise near 0.
    rng = np.random.default_rng(0)
    noise = (rng.random((30, 30)) * 0.04).astype(np.float32)
    mask, threshold = threshold_probability(noise)
    assert threshold == FALLBACK_THRESHOLD and not mask.any()


def test_threshold_rejects_bad_maps() -> None:
    with pytest.raises(MaskError, match="NaN"):
        threshold_probability(np.array([[0.1, np.nan]]))
    with pytest.raises(MaskError, match=r"\[0, 1\]"):
        threshold_probability(np.array([[0.1, 3.0]]))
    with pytest.raises(MaskError, match="2-D"):
        threshold_probability(np.zeros(5))


def test_mask_probabilities_chains_both_steps() -> None:
    probabilities = np.where(_car(), 0.95, 0.02).astype(np.float32)
    probabilities[20, 20] = 0.0  # a one-pixel hole
    result, threshold = mask_probabilities(probabilities)
    assert SANE_THRESHOLDS[0] <= threshold <= SANE_THRESHOLDS[1]
    assert np.array_equal(result.mask, _car()) and result.holes_filled == 1

"""corrode.segment: loading segmenters from runs and files, probabilities at the image's own size."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from corrode import runs
from corrode.checkpoint import CheckpointError, save_model
from corrode.config import to_dict
from corrode.errors import UsageError
from corrode.locate import ModelNotFoundError
from corrode.models.unet import CarSegmenter, SegmenterConfig
from corrode.segment import Segmenter

TINY = SegmenterConfig(width=0.25, decoder_channels=(8, 8, 8, 8), size=32)


def constant_model(car_logit: float) -> CarSegmenter:
    """A segmenter whose logits are (0, car_logit) everywhere: P(car) = sigmoid(car_logit)."""
    torch.manual_seed(0)
    model = CarSegmenter(TINY)
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.copy_(torch.tensor([0.0, car_logit]))
    return model


@pytest.fixture
def run(tmp_path: Path) -> Path:
    folder = tmp_path / "run"
    torch.manual_seed(0)
    save_model(folder / runs.WEIGHTS, CarSegmenter(TINY), kind="seg", config=to_dict(TINY))
    save_model(folder / runs.BEST_WEIGHTS, constant_model(2.0), kind="seg", config=to_dict(TINY))
    return folder


def image(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_run_folder_loads_best_weights_and_gives_known_probabilities(run: Path) -> None:
    segmenter = Segmenter.load(run, device="cpu")
    assert segmenter.size == 32 and segmenter.path == run / runs.BEST_WEIGHTS
    probability = segmenter.probabilities(image(45, 70))
    assert probability.shape == (45, 70) and probability.dtype == np.float32
    np.testing.assert_allclose(probability, 1 / (1 + math.exp(-2.0)), rtol=1e-5)


def test_probabilities_at_each_images_own_size_in_range(run: Path) -> None:
    segmenter = Segmenter.load(run / runs.WEIGHTS, device="cpu")
    images = [image(32, 32, 1), image(100, 60, 2), image(7, 300, 3)]
    results = segmenter.probabilities_batch(images)
    assert [r.shape for r in results] == [(32, 32), (100, 60), (7, 300)]
    for result in results:
        assert result.dtype == np.float32 and result.min() >= 0.0 and result.max() <= 1.0
        assert result.std() > 0  # a random-weight model is not constant


def test_batches_give_what_single_images_give(run: Path) -> None:
    segmenter = Segmenter.load(run / runs.WEIGHTS, device="cpu", batch_size=2)
    images = [image(40, 50, seed) for seed in range(5)]
    batched = segmenter.probabilities_batch(images)
    for one, together in zip(images, batched, strict=True):
        np.testing.assert_allclose(segmenter.probabilities(one), together, atol=1e-5)


def test_resizing_back_follows_the_image(run: Path) -> None:
    # The same picture at 2x must give (about) the 2x-upsampled probability map.
    segmenter = Segmenter.load(run / runs.WEIGHTS, device="cpu")
    small = image(32, 32, 5)
    large = np.repeat(np.repeat(small, 2, axis=0), 2, axis=1)
    at_small = segmenter.probabilities(small)
    at_large = segmenter.probabilities(large)
    assert at_large.shape == (64, 64)
    np.testing.assert_allclose(at_large[::2, ::2].mean(), at_small.mean(), atol=0.02)


def test_bf16_autocast_is_close_to_fp32(run: Path) -> None:
    fp32 = Segmenter.load(run / runs.WEIGHTS, device="cpu", precision="fp32")
    bf16 = Segmenter.load(run / runs.WEIGHTS, device="cpu", precision="bf16")
    picture = image(32, 32, 9)
    assert np.abs(fp32.probabilities(picture) - bf16.probabilities(picture)).max() < 0.1


def test_wrong_kind_corrupt_missing_and_mismatched_files(tmp_path: Path) -> None:
    save_model(tmp_path / "gan.safetensors", CarSegmenter(TINY), kind="gan", config=to_dict(TINY))
    with pytest.raises(CheckpointError, match="expected a 'seg' model"):
        Segmenter.load(tmp_path / "gan.safetensors", device="cpu")
    (tmp_path / "corrupt.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(CheckpointError, match="corrupt.safetensors"):
        Segmenter.load(tmp_path / "corrupt.safetensors", device="cpu")
    with pytest.raises(ModelNotFoundError):
        Segmenter.load(tmp_path / "missing", device="cpu")
    wider = to_dict(SegmenterConfig(width=0.5, decoder_channels=(8, 8, 8, 8), size=32))
    save_model(tmp_path / "wider.safetensors", CarSegmenter(TINY), kind="seg", config=wider)
    with pytest.raises(CheckpointError, match="do not fit"):
        Segmenter.load(tmp_path / "wider.safetensors", device="cpu")
    odd = {**to_dict(TINY), "size": 100}
    save_model(tmp_path / "odd.safetensors", CarSegmenter(TINY), kind="seg", config=odd)
    with pytest.raises(CheckpointError, match="multiple of 32"):
        Segmenter.load(tmp_path / "odd.safetensors", device="cpu")


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((20, 20), np.uint8),
        np.zeros((20, 20, 4), np.uint8),
        np.zeros((20, 20, 3)),
        np.zeros((0, 5, 3), np.uint8),
    ],
)
def test_bad_arrays_are_refused(run: Path, bad: np.ndarray) -> None:
    with pytest.raises(UsageError, match="image"):
        Segmenter.load(run, device="cpu").probabilities(bad)

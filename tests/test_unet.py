"""corrode.models.unet: the paper's skips and output shapes, config validation."""

import pytest
import torch

from corrode.errors import ConfigError
from corrode.models.unet import SKIP_NAMES, CarSegmenter, SegmenterConfig

TINY = SegmenterConfig(width=0.25, decoder_channels=(16, 16, 8, 8), size=64)


def test_paper_skip_shapes_at_256() -> None:
    model = CarSegmenter(SegmenterConfig()).eval()
    with torch.inference_mode():
        skips = model.skips(torch.rand(1, 3, 256, 256))
        logits = model(torch.rand(1, 3, 256, 256))
    shapes = {name: tuple(skip.shape[1:]) for name, skip in zip(SKIP_NAMES, skips, strict=True)}
    assert shapes == {
        "block_1_expand_relu": (96, 128, 128),
        "block_3_expand_relu": (144, 64, 64),
        "block_6_expand_relu": (192, 32, 32),
        "block_13_expand_relu": (576, 16, 16),
        "block_16_project": (320, 8, 8),
    }
    assert logits.shape == (1, 2, 256, 256)


def test_skips_are_the_expansion_relu_outputs() -> None:
    # The hand-run blocks must give exactly what torchvision's own modules give.
    model = CarSegmenter(TINY).eval()
    images = torch.rand(2, 3, 64, 64)
    with torch.inference_mode():
        skips = model.skips(images)
        x = (images - model.mean) / model.std
        expected = []
        for index, block in enumerate(model.encoder):
            if index in (2, 4, 7, 14):
                expected.append(block.conv[0](x))
            x = block(x)
        expected.append(x)
    for got, want in zip(skips, expected, strict=True):
        torch.testing.assert_close(got, want)
    # ReLU6 outputs: clipped to [0, 6].
    assert all(float(s.min()) >= 0 and float(s.max()) <= 6 for s in skips[:4])


def test_tiny_width_shapes_scale_with_input() -> None:
    model = CarSegmenter(TINY)
    skips = model.skips(torch.rand(1, 3, 64, 64))
    assert [s.shape[-1] for s in skips] == [32, 16, 8, 4, 2]
    assert [s.shape[1] for s in skips] == list(model.skip_channels)
    assert model(torch.rand(3, 3, 96, 64)).shape == (3, 2, 96, 64)


def test_gradients_reach_the_encoder() -> None:
    model = CarSegmenter(TINY)
    model(torch.rand(2, 3, 64, 64)).logsumexp(1).mean().backward()
    assert model.encoder[0][0].weight.grad is not None
    assert float(model.encoder[0][0].weight.grad.abs().sum()) > 0


def test_decoder_has_five_transposed_convolutions() -> None:
    model = CarSegmenter(TINY)
    transposed = [m for m in model.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert len(transposed) == 5 and all(m.stride == (2, 2) for m in transposed)


def test_state_dict_has_no_normalisation_buffers() -> None:
    # mean/std are constants of the architecture, not weights: checkpoints must not carry them.
    assert not any(key in ("mean", "std") for key in CarSegmenter(TINY).state_dict())


@pytest.mark.parametrize(
    "values",
    [{"size": 100}, {"size": 0}, {"width": 0}, {"decoder_channels": (8, 8, 8)}, {"num_classes": 1}],
)
def test_bad_configs_are_refused(values) -> None:
    with pytest.raises(ConfigError):
        SegmenterConfig(**values)

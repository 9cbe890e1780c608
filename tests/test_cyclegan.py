"""corrode.models.cyclegan: the paper's generator and discriminators, attention and shared options."""

import pytest
import torch

from corrode.errors import ConfigError
from corrode.models.cyclegan import (
    ConditionalInstanceNorm,
    CycleGanConfig,
    Discriminator,
    GeneratorSet,
    MultiDomainCycleGAN,
    MultiScaleDiscriminator,
    ResnetGenerator,
    count_parameters,
)

TINY = {"base_channels": 4, "residual_blocks": 1, "discriminator_channels": 4}


def test_paper_generator_has_the_reference_parameter_count() -> None:
    assert count_parameters(ResnetGenerator(64, 9)) == 11_378_179


def test_resize_upsampling_keeps_the_parameter_count_and_shapes() -> None:
    assert count_parameters(ResnetGenerator(64, 9, upsample="resize")) == 11_378_179
    generator = ResnetGenerator(4, 1, upsample="resize", attention=True)
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in generator.modules())
    assert generator(torch.rand(1, 3, 32, 48) * 2 - 1).shape == (1, 3, 32, 48)
    model = MultiDomainCycleGAN(CycleGanConfig(**TINY, generator="shared", upsample="resize"))
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in model.modules())


def test_generator_keeps_shape_and_tanh_range() -> None:
    torch.manual_seed(0)
    generator = ResnetGenerator(4, 2)
    out = generator(torch.rand(2, 3, 32, 48) * 2 - 1)
    assert out.shape == (2, 3, 32, 48)
    assert out.min() >= -1 and out.max() <= 1


@pytest.mark.parametrize(
    ("kind", "size", "side"), [("paper", 256, 8), ("patch", 256, 30), ("paper", 64, 2), ("patch", 64, 6)]
)
def test_discriminator_output_shapes(kind: str, size: int, side: int) -> None:
    scores = Discriminator(kind, channels=4)(torch.zeros(2, 3, size, size))
    assert scores.shape == (2, 1, side, side)


def test_discriminator_layout_matches_the_paper() -> None:
    convs = [m for m in Discriminator("paper", 8).modules() if isinstance(m, torch.nn.Conv2d)]
    norms = [m for m in Discriminator("paper", 8).modules() if isinstance(m, torch.nn.InstanceNorm2d)]
    assert [c.stride[0] for c in convs] == [2, 2, 2, 2, 2]
    assert len(norms) == 3 and convs[-1].out_channels == 1


def test_init_is_normal_002() -> None:
    torch.manual_seed(0)
    weights = torch.cat(
        [m.weight.flatten() for m in ResnetGenerator(16, 2).modules() if isinstance(m, torch.nn.Conv2d)]
    )
    assert abs(weights.mean().item()) < 0.002
    assert weights.std().item() == pytest.approx(0.02, rel=0.05)


def test_attention_output_keeps_input_where_the_map_is_zero() -> None:
    generator = ResnetGenerator(4, 1, attention=True)
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    head = generator.head[1]
    with torch.no_grad():
        head.bias[3] = -100.0  # attention map ~ 0: nothing painted
    assert torch.allclose(generator(x), x, atol=1e-6)
    with torch.no_grad():
        head.bias[3] = 100.0  # attention map ~ 1: all painted
        layer = torch.tanh(generator.raw(x)[:, :3])
    assert torch.allclose(generator(x), layer, atol=1e-5)
    assert generator.attention_map(x).shape == (1, 1, 16, 16)


def test_palette_layer_paints_only_mixes_of_its_colours() -> None:
    palette = torch.tensor([[0.4, 0.2, 0.1], [0.2, 0.1, 0.05]])
    generator = ResnetGenerator(4, 1, attention=True, palette=palette)
    head = generator.head[1]
    assert head.out_channels == 2 + 1 + 1  # two colour logits, brightness, map
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        head.weight.zero_()
        head.bias.copy_(torch.tensor([100.0, -100.0, 0.0, 100.0]))  # colour 0, brightness 1, map 1
    expected = (palette[0] * 2 - 1).view(1, 3, 1, 1).expand(1, 3, 16, 16)
    assert torch.allclose(generator(x), expected, atol=1e-5)
    with torch.no_grad():
        head.bias.copy_(torch.tensor([0.0, 0.0, 100.0, 100.0]))  # even mix, brightness 2 (clamped)
    expected = ((palette.mean(0) * 2).clamp(0, 1) * 2 - 1).view(1, 3, 1, 1)
    assert torch.allclose(generator(x), expected.expand(1, 3, 16, 16), atol=1e-5)
    torch.manual_seed(0)
    free = ResnetGenerator(4, 1, attention=True, palette=palette)
    with torch.no_grad():
        free.head[1].bias[-1] = 100.0  # map ~ 1 everywhere: the output is the layer
    out = (free(x) + 1) / 2  # from a random head, still of the rust colours' hue (R > G > B)
    assert bool((out[:, 0] >= out[:, 1]).all() and (out[:, 1] >= out[:, 2]).all())
    with pytest.raises(ValueError, match="attention"):
        ResnetGenerator(4, 1, palette=palette)


def test_palette_set_paints_rust_one_way_and_loads_by_its_config() -> None:
    from corrode.synth.textures import rust_palette

    config = CycleGanConfig(**TINY, attention=True, rust_layer="palette")
    generators = GeneratorSet(config)
    painters = {k for k, g in generators.translators.items() if g.palette is not None}
    assert painters == {"none_to_mild", "none_to_moderate", "none_to_severe"}
    colours = torch.tensor(rust_palette(8))
    assert colours.shape == (8, 3) and bool((colours[:, 0] > colours[:, 2]).all())  # orange to brown
    assert torch.equal(generators.translators["none_to_mild"].palette, colours)
    again = GeneratorSet(config)
    again.load_state_dict(generators.state_dict())  # the palette travels with the weights
    # A loader starts from placeholder zeros (no texture reading) and the file's palette replaces them.
    placeholder = GeneratorSet(config, palette=torch.zeros(8, 3))
    assert not placeholder.translators["none_to_mild"].palette.any()
    placeholder.load_state_dict(generators.state_dict())
    assert torch.equal(placeholder.translators["none_to_severe"].palette, colours)
    shared = {"rust_layer": "palette", "attention": True, "generator": "shared"}
    for bad in ({"rust_layer": "palette"}, shared):
        with pytest.raises(ConfigError, match="palette"):
            CycleGanConfig(**TINY, **bad)
    with pytest.raises(ConfigError, match="rust_layer"):
        CycleGanConfig(**TINY, rust_layer="paint")


def test_conditional_instance_norm_known_answer() -> None:
    norm = ConditionalInstanceNorm(2, conditions=3)
    with torch.no_grad():
        norm.style.weight.copy_(
            torch.tensor([[1.0, 1.0, 0.0, 0.0], [2.0, 3.0, 0.5, -1.0], [0.0, 0.0, 0.0, 0.0]])
        )
    x = torch.randn(2, 2, 5, 5)
    plain = torch.nn.functional.instance_norm(x)
    out = norm(x, torch.tensor([1, 2]))
    assert torch.allclose(out[0, 0], plain[0, 0] * 2 + 0.5, atol=1e-5)
    assert torch.allclose(out[0, 1], plain[0, 1] * 3 - 1, atol=1e-5)
    assert torch.allclose(out[1], torch.zeros_like(out[1]))


def test_shared_generator_is_conditioned_and_about_six_times_smaller() -> None:
    separate = GeneratorSet(CycleGanConfig(base_channels=16, residual_blocks=3))
    shared = GeneratorSet(CycleGanConfig(base_channels=16, residual_blocks=3, generator="shared"))
    assert 5.5 < count_parameters(separate) / count_parameters(shared) < 6.1
    torch.manual_seed(0)
    with torch.no_grad():
        for module in shared.modules():  # random styles so the levels differ from the start
            if isinstance(module, ConditionalInstanceNorm):
                module.style.weight.normal_(1.0, 0.5)
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    mild, severe = shared.translate(x, "none", "mild"), shared.translate(x, "none", "severe")
    assert not torch.allclose(mild, severe)
    # One batched call equals separate calls (instance norm is per sample).
    batched = shared.translate_many([(x, "none", "mild"), (x, "none", "severe")])
    assert torch.allclose(batched[0], mild, atol=1e-5) and torch.allclose(batched[1], severe, atol=1e-5)


def test_model_is_keyed_by_level_and_mapping() -> None:
    model = MultiDomainCycleGAN(CycleGanConfig(**TINY))
    assert list(model.discriminators.judges) == ["none", "mild", "moderate", "severe"]
    assert sorted(model.generators.translators) == sorted(
        [
            "none_to_mild",
            "none_to_moderate",
            "none_to_severe",
            "mild_to_none",
            "moderate_to_none",
            "severe_to_none",
        ]
    )
    three = MultiDomainCycleGAN(CycleGanConfig(levels=("clean", "rusty", "gone"), **TINY))
    assert len(three.generators.translators) == 4 and len(three.discriminators.judges) == 3
    with pytest.raises(KeyError):
        three.generators.translate(torch.zeros(1, 3, 8, 8), "rusty", "gone")


@pytest.mark.parametrize("kind", ["separate", "shared"])
def test_generator_set_forward_gives_every_image_of_a_step(kind: str) -> None:
    config = CycleGanConfig(generator=kind, **TINY)
    generators = GeneratorSet(config)
    a = torch.rand(2, 3, 16, 16) * 2 - 1
    x = {level: torch.rand(2, 3, 16, 16) * 2 - 1 for level in config.rusty}
    out = generators(a, x, identity=True)
    assert len(out) == 6 * 3
    assert torch.allclose(out["fake_mild"], generators.translate(a, "none", "mild"), atol=1e-5)
    assert torch.allclose(
        out["rec_clean_mild"], generators.translate(out["fake_mild"], "mild", "none"), atol=1e-5
    )
    assert torch.allclose(out["same_severe"], generators.translate(x["severe"], "none", "severe"), atol=1e-5)
    assert all(v.shape == (2, 3, 16, 16) for v in out.values())


def test_cycle_noise_reaches_the_way_back_only() -> None:
    torch.manual_seed(0)
    generators = GeneratorSet(CycleGanConfig(**TINY))
    a = torch.rand(2, 3, 16, 16) * 2 - 1
    x = {level: torch.rand(2, 3, 16, 16) * 2 - 1 for level in ("mild", "moderate", "severe")}
    plain = generators(a, x)
    noisy = generators(a, x, cycle_noise=0.5)
    for level in x:
        assert torch.equal(plain[f"fake_{level}"], noisy[f"fake_{level}"])
        assert torch.equal(plain[f"back_{level}"], noisy[f"back_{level}"])
        assert not torch.allclose(plain[f"rec_clean_{level}"], noisy[f"rec_clean_{level}"])
        assert not torch.allclose(plain[f"rec_{level}"], noisy[f"rec_{level}"])
    assert torch.equal(generators(a, x, cycle_noise=0.0)["rec_mild"], plain["rec_mild"])


def test_bad_model_configs() -> None:
    with pytest.raises(ConfigError):
        CycleGanConfig(generator="onehot")
    with pytest.raises(ConfigError):
        CycleGanConfig(discriminator="pixel")
    with pytest.raises(ConfigError):
        CycleGanConfig(upsample="bilinear-ish")
    with pytest.raises(ConfigError):
        CycleGanConfig(levels=("none",))


def test_multiscale_discriminator_joins_both_scales() -> None:
    scores = MultiScaleDiscriminator(channels=4)(torch.zeros(2, 3, 64, 64))
    # PatchGAN at 64 px: 6x6; at 32 px: 2x2.
    assert scores.shape == (2, 1, 36 + 4)
    model = MultiDomainCycleGAN(CycleGanConfig(**TINY, discriminator="multiscale"))
    assert isinstance(model.discriminators.judges["mild"], MultiScaleDiscriminator)


def test_spectral_norm_bounds_every_discriminator_convolution() -> None:
    torch.manual_seed(0)
    judge = Discriminator("patch", channels=4, norm="spectral")
    convs = [m for m in judge.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(torch.nn.utils.parametrize.is_parametrized(c, "weight") for c in convs)
    for _ in range(20):  # power iterations settle in training mode
        judge(torch.rand(1, 3, 64, 64))
    judge.eval()
    for conv in convs:
        with torch.no_grad():
            top = torch.linalg.matrix_norm(conv.weight.flatten(1), ord=2)
        assert float(top) == pytest.approx(1.0, abs=0.05)
    assert not any(
        torch.nn.utils.parametrize.is_parametrized(m, "weight")
        for m in Discriminator("patch", channels=4).modules()
        if isinstance(m, torch.nn.Conv2d)
    )
    with pytest.raises(ConfigError):
        CycleGanConfig(discriminator_norm="batch")


def test_attention_maps_come_with_the_translations() -> None:
    torch.manual_seed(0)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    plain = ResnetGenerator(4, 1)
    image, attention = plain.forward_with_map(x)
    assert attention is None and torch.equal(image, plain(x))
    for generator in ("separate", "shared"):
        generators = GeneratorSet(CycleGanConfig(**TINY, attention=True, generator=generator))
        out = generators(x, {"mild": x, "moderate": x, "severe": x})
        attention = out["attention_mild"]
        assert attention.shape == (2, 1, 32, 32) and 0 <= attention.min() <= attention.max() <= 1
        translator = generators.shared or generators.translators["none_to_mild"]
        condition = torch.full((2,), 1) if generators.shared is not None else None
        assert torch.allclose(attention, translator.attention_map(x, condition), atol=1e-6)
    assert "attention_mild" not in GeneratorSet(CycleGanConfig(**TINY))(x, {"mild": x})

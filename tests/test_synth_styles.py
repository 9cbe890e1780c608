"""The two rust styles of `corrode synth`: flat is today's look bit for bit, photo changes only how the
rust looks (same rust pixels, masks, coverage and background), and the shipped textures."""

import hashlib

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from corrode.cli import app
from corrode.errors import ConfigError
from corrode.images import read_image, read_mask
from corrode.synth import RUST_BANDS, SynthConfig, draw_scene, read_manifest, synth
from corrode.synth.photo_rust import paint_photo_rust
from corrode.synth.raster import Canvas
from corrode.synth.rust import paint_rust
from corrode.synth.textures import TEXTURE_DIR, TEXTURES, load_textures, sample_texture

runner = CliRunner()

# sha256 (first 16 hex digits) of image, mask and rust arrays and the rust fraction of
# draw_scene(default_rng([2024, level index, n]), 64, level), computed with the code before the photo
# style existed. (A different OpenCV or NumPy build could round differently and change them.)
FLAT_KNOWN = [
    ("none", 0, "3fc3bf0fcd448f67", "60cae5f1b53dc1ef", "ad7facb2586fc6e9", 0.000000),
    ("none", 1, "f220acba78ffe16f", "f58ba687369ad741", "ad7facb2586fc6e9", 0.000000),
    ("mild", 0, "004e6108e28452a0", "db6e3de4527493d8", "1599b841b97eb7c5", 0.044072),
    ("mild", 1, "b62c22042f5aa127", "75654f08221565e3", "e0bdacb4cd8603a8", 0.056464),
    ("moderate", 0, "526ee03f3c02d689", "6cc5b122fddedc15", "48dd9d8b1bfaf84b", 0.201878),
    ("moderate", 1, "cb34f86ab82a226a", "1366035b56bb076c", "42ebc41a0184c43e", 0.204301),
    ("severe", 0, "cf0cf9f4c645b6b2", "7e4ef77d1bab9bf2", "9a7bcc86844cf2e7", 0.585080),
    ("severe", 1, "189c2f121353c9db", "bab9c97ca258eea9", "70f6a785d92c7164", 0.546016),
]
LEVEL_INDEX = {"none": 0, "mild": 1, "moderate": 2, "severe": 3}


def _hash(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()[:16]


def _scene(level: str, n: int, style: str):
    return draw_scene(np.random.default_rng([2024, LEVEL_INDEX[level], n]), 64, level, rust_style=style)


@pytest.mark.parametrize(("level", "n", "image", "mask", "rust", "fraction"), FLAT_KNOWN)
def test_flat_style_is_todays_pixels(level, n, image, mask, rust, fraction) -> None:
    scene = _scene(level, n, "flat")
    assert (_hash(scene.image), _hash(scene.mask), _hash(scene.rust)) == (image, mask, rust)
    assert scene.rust_fraction == pytest.approx(fraction, abs=1e-6)


@pytest.mark.parametrize(("level", "n"), [(level, n) for level, n, *_ in FLAT_KNOWN])
def test_photo_style_changes_only_how_the_rust_looks(level, n, monkeypatch) -> None:
    import corrode.synth.scene as scene_module

    grown: list[np.ndarray] = []
    grow = scene_module.grow_rust

    def recording(*args, **kwargs):
        grown.append(grow(*args, **kwargs))
        return grown[-1]

    monkeypatch.setattr(scene_module, "grow_rust", recording)
    flat, photo = _scene(level, n, "flat"), _scene(level, n, "photo")
    np.testing.assert_array_equal(photo.mask, flat.mask)
    np.testing.assert_array_equal(photo.rust, flat.rust)
    assert photo.rust_fraction == flat.rust_fraction
    low, high = RUST_BANDS[level]
    assert low <= photo.rust_fraction <= high
    # The rest of the scene is untouched: same background, same pixels outside the car.
    np.testing.assert_array_equal(photo.background, flat.background)
    np.testing.assert_array_equal(photo.image[~photo.mask], flat.image[~flat.mask])
    changed = np.abs(photo.image.astype(int) - flat.image.astype(int)).sum(axis=2) > 0
    if level == "none":
        assert not changed.any() and not grown
        return
    assert changed[photo.rust].mean() > 0.9  # the rust itself is repainted ...
    # ... and elsewhere only paint near the rust as drawn at 2x (rim, blisters) or below it (run-off).
    big = grown[0]
    assert np.array_equal(big, grown[1])
    allowed = cv2.dilate(big.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
    for rows in range(1, 25):
        allowed[rows:] |= big[:-rows]
    allowed = cv2.resize(allowed.astype(np.float32), photo.mask.shape[::-1], interpolation=cv2.INTER_AREA) > 0
    if photo.flipped:
        allowed = allowed[:, ::-1]
    assert not (changed & ~allowed).any()


def test_photo_rust_is_rust_coloured_and_textured_on_a_blue_car() -> None:
    for style in ("photo", "flat"):
        scene = draw_scene(np.random.default_rng(5), 128, "severe", colour="bright blue", rust_style=style)
        rust = scene.image[scene.rust].astype(float)
        red, green, blue = rust.mean(axis=0)
        assert red > green > blue, style
        assert rust.mean(axis=1).std() > 8, style  # textured, not one flat colour


def _panel(size: int = 160) -> tuple[Canvas, np.ndarray, np.ndarray]:
    """A flat grey painted panel filling the canvas, a square rust patch in its upper middle."""
    canvas = Canvas(size)
    paint = np.array([150.0, 150.0, 150.0])
    canvas.alpha[:] = 1
    canvas.paint[:] = 1
    canvas.shade[:] = 1
    canvas.colour[:] = paint
    rust = np.zeros((size, size), bool)
    rust[30:70, 60:100] = True
    return canvas, rust, paint


def test_photo_rust_rim_streaks_and_untouched_paint() -> None:
    canvas, rust, paint = _panel()
    before = canvas.colour.copy()
    paint_photo_rust(canvas, rust, np.random.default_rng(0), before.copy(), paint, pixels_per_metre=100)
    after = canvas.colour
    redness = after[..., 0] - after[..., 2]
    assert redness[rust].mean() > 20  # rust coloured
    assert after[rust].std(axis=0).mean() > 5  # textured
    # Paint just around the patch is chipped or blistered; paint far from it is not touched at all.
    ring = np.zeros_like(rust)
    ring[28:72, 58:102] = True
    ring &= ~rust
    assert (np.abs(after - before).sum(axis=2)[ring] > 1).mean() > 0.2
    far = np.ones_like(rust)
    far[20:, 50:110] = False  # everything but the patch's surroundings and the run-off below it
    np.testing.assert_array_equal(after[far], before[far])
    # Run-off below the patch is reddish; the same distance above it is clean paint.
    below, above = redness[80:100, 62:98], redness[5:25, 62:98]
    assert below.max() > 5 and below.mean() > above.mean()
    assert np.abs(above).max() < 1e-3


@pytest.mark.parametrize("bit_generator", [np.random.PCG64, np.random.SFC64])
def test_photo_style_takes_the_same_draws_as_flat(bit_generator) -> None:
    canvas, rust, paint = _panel()
    first, second = np.random.Generator(bit_generator(9)), np.random.Generator(bit_generator(9))
    paint_rust(canvas, rust, first)
    canvas, rust, paint = _panel()
    paint_photo_rust(canvas, rust, second, canvas.colour.copy(), paint, pixels_per_metre=100)
    assert first.random() == second.random()


def test_textures_ship_small_with_credits_and_load_once() -> None:
    files = sorted(TEXTURE_DIR.glob("*.jpg"))
    assert {f.name for f in files} == set(TEXTURES)
    assert sum(f.stat().st_size for f in files) < 10 * 2**20
    sources = (TEXTURE_DIR / "SOURCES.md").read_text(encoding="utf-8")
    assert "CC0 1.0" in sources
    assert all(name in sources for name in TEXTURES)
    textures = load_textures()
    assert textures is load_textures()
    assert all(t.levels[0].shape == (512, 512, 3) for t in textures)


def test_sample_texture_scale_rotation_and_tiling() -> None:
    texture = load_textures()[0]
    crop = sample_texture(texture, (40, 30), 1.0, 0.0, (0.0, 0.0))
    np.testing.assert_allclose(crop, texture.levels[0][:40, :30], atol=1e-3)
    # Wider than the texture: it tiles instead of running out.
    wide = sample_texture(texture, (8, 1100), 1.0, 0.0, (0.0, 0.0))
    np.testing.assert_allclose(wide[:, 512:600], texture.levels[0][:8, :88], atol=1e-3)
    # Shrunk 8x: read from the pyramid, about the same mean colour.
    small = sample_texture(texture, (64, 64), 1 / 8, 0.7, (10.0, 20.0))
    assert np.abs(small.mean(axis=(0, 1)) - texture.levels[0].mean(axis=(0, 1))).max() < 12


TINY = {"none": 2, "mild": 2, "moderate": 2, "severe": 2, "carvana_cars": 1, "carvana_views": 2, "size": 48}


def test_synth_sets_of_both_styles_share_masks_and_manifest(tmp_path) -> None:
    photo = synth(SynthConfig(out=tmp_path / "photo", **TINY))
    flat = synth(SynthConfig(out=tmp_path / "flat", rust_style="flat", **TINY))
    rows = read_manifest(photo / "manifest.csv")
    assert rows == read_manifest(flat / "manifest.csv")
    differ = 0
    for row in rows:
        np.testing.assert_array_equal(read_mask(photo / row["mask"]), read_mask(flat / row["mask"]))
        differ += not np.array_equal(read_image(photo / row["file"]), read_image(flat / row["file"]))
    assert differ == sum(row["true_level"] != "none" for row in rows)
    assert '"rust_style": "flat"' in (flat / "config.json").read_text()


def test_rust_style_is_validated(tmp_path) -> None:
    with pytest.raises(ConfigError, match="rust_style"):
        SynthConfig(out=tmp_path, rust_style="oil")
    with pytest.raises(ValueError):
        draw_scene(np.random.default_rng(0), 48, "mild", rust_style="oil")


def test_cli_rust_style(tmp_path) -> None:
    base = ["synth", "--none", "1", "--mild", "0", "--moderate", "0", "--severe", "1", "--carvana-cars", "0"]
    flat = ["--size", "40", "--rust-style", "flat", "--json"]
    result = runner.invoke(app, [*base, str(tmp_path / "a"), *flat])
    assert result.exit_code == 0, result.output
    assert '"rust_style": "flat"' in result.stdout
    bad = runner.invoke(app, [*base, str(tmp_path / "b"), "--rust-style", "oil"])
    assert bad.exit_code == 2 and "rust_style" in bad.output

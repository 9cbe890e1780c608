"""`corrode synth` and the drawing behind it: determinism, exact masks, rust coverage, layout, CLI."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from corrode import levels
from corrode.cli import app
from corrode.datasets import find_levels, find_pairs, level_mask_path
from corrode.errors import ConfigError, UsageError
from corrode.images import read_image, read_mask
from corrode.synth import (
    BACKGROUNDS,
    BODY_TYPES,
    MANIFEST_COLUMNS,
    RUST_BANDS,
    VIEWS,
    SynthConfig,
    assign_labels,
    draw_car,
    draw_scene,
    read_manifest,
    synth,
)

runner = CliRunner()
TINY = {"none": 3, "mild": 2, "moderate": 2, "severe": 2, "carvana_cars": 2, "carvana_views": 3, "size": 48}


def _tiny(tmp_path, name="out", **overrides) -> SynthConfig:
    return SynthConfig(out=tmp_path / name, **{**TINY, **overrides})


# Drawing one car


def test_draw_car_returns_image_mask_and_fraction() -> None:
    image, mask, fraction = draw_car(np.random.default_rng(0), 64, "moderate")
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8
    assert mask.shape == (64, 64) and mask.dtype == bool
    assert 0.05 < mask.mean() < 0.95  # a car, not nothing and not everything
    low, high = RUST_BANDS["moderate"]
    assert low <= fraction <= high


def test_same_seed_same_pixels_other_seed_other_pixels() -> None:
    first = draw_car(np.random.default_rng([3, 1]), 64, "severe")
    second = draw_car(np.random.default_rng([3, 1]), 64, "severe")
    other = draw_car(np.random.default_rng([3, 2]), 64, "severe")
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    assert first[2] == second[2]
    assert not np.array_equal(first[0], other[0])


@pytest.mark.parametrize("view", sorted(VIEWS))
@pytest.mark.parametrize("background", sorted(BACKGROUNDS))
def test_mask_is_exactly_the_drawn_car(view: str, background: str) -> None:
    scene = draw_scene(
        np.random.default_rng(len(view) * 7 + len(background)), 64, "mild", view=view, background=background
    )
    outside = ~scene.mask
    # Outside the mask the photo is the background render (shadow included), pixel for pixel ...
    np.testing.assert_array_equal(scene.image[outside], scene.background[outside])
    # ... and inside it the car is drawn: nearly every mask pixel differs from the bare background.
    changed = np.abs(scene.image.astype(int) - scene.background.astype(int)).sum(axis=2) > 0
    assert changed[scene.mask].mean() > 0.97
    assert scene.mask.any() and outside.any()


def test_mask_includes_the_wheels() -> None:
    scene = draw_scene(np.random.default_rng(4), 96, "none", view="side", background="grass", flip=False)
    rows = np.flatnonzero(scene.mask.any(axis=1))
    bottom = scene.mask[rows[-1] - 2]
    # The lowest rows of a side view are the two tyres: two separate runs of mask pixels.
    runs = np.count_nonzero(np.diff(bottom.astype(int)) == 1)
    assert runs == 2


def test_rust_within_band_on_car_only_and_growing_with_level() -> None:
    means = []
    for level in levels.NAMES:
        fractions = []
        for i in range(6):
            scene = draw_scene(np.random.default_rng([11, i]), 64, level)
            low, high = RUST_BANDS[level]
            assert low <= scene.rust_fraction <= high, (level, i, scene.rust_fraction)
            assert not (scene.rust & ~scene.mask).any()
            assert scene.rust_fraction == pytest.approx(scene.rust.sum() / scene.mask.sum())
            fractions.append(scene.rust_fraction)
        means.append(np.mean(fractions))
    assert means[0] == 0.0
    assert means == sorted(means) and len(set(means)) == 4


def test_rust_looks_like_rust() -> None:
    scene = draw_scene(np.random.default_rng(5), 96, "severe", colour="bright blue")
    rust = scene.image[scene.rust].astype(int)
    red, green, blue = rust[:, 0].mean(), rust[:, 1].mean(), rust[:, 2].mean()
    assert red > green > blue  # orange-brown, on a blue car
    assert rust.std(axis=0).mean() > 10  # textured, not flat


def test_unknown_choices_are_refused() -> None:
    with pytest.raises(ValueError):
        draw_scene(np.random.default_rng(0), 64, "none", body="limousine")
    with pytest.raises(UsageError):
        draw_scene(np.random.default_rng(0), 64, "rotten")


@pytest.mark.parametrize("body", BODY_TYPES)
def test_every_body_type_draws(body: str) -> None:
    scene = draw_scene(np.random.default_rng(1), 48, "none", body=body, view="side")
    assert scene.body == body and scene.mask.any()


# Labels


def test_label_noise_moves_the_expected_number_only_to_neighbours() -> None:
    true = ["none"] * 50 + ["mild"] * 20 + ["moderate"] * 20 + ["severe"] * 10
    given = assign_labels(true, 0.2, seed=3)
    moved = [(t, g) for t, g in zip(true, given, strict=True) if t != g]
    assert len(moved) == 20
    assert all(abs(levels.get(t).index - levels.get(g).index) == 1 for t, g in moved)
    assert assign_labels(true, 0.0, seed=3) == true
    assert assign_labels(true, 0.2, seed=3) == given


# The whole set


def test_layout_counts_manifest_and_preview(tmp_path) -> None:
    out = synth(_tiny(tmp_path))
    found = find_levels(out / "levels")
    assert {name: len(paths) for name, paths in found.items()} == {
        "none": 3,
        "mild": 2,
        "moderate": 2,
        "severe": 2,
    }
    for paths in found.values():
        for path in paths:
            mask = read_mask(level_mask_path(path, out / "levels_masks"))
            assert read_image(path).shape[:2] == mask.shape == (48, 48)
    pairs = find_pairs(out / "carvana")
    assert len(pairs) == 6 and all(p.mask.name.endswith("_mask.gif") for p in pairs)
    assert {p.stem.rsplit("_", 1)[1] for p in pairs} == {"01", "02", "03"}
    rows = read_manifest(out / "manifest.csv")
    assert tuple(rows[0]) == MANIFEST_COLUMNS
    assert len(rows) == 15
    for row in rows:
        assert (out / row["file"]).is_file() and (out / row["mask"]).is_file()
        assert row["body"] in BODY_TYPES and row["background"] in BACKGROUNDS
        low, high = RUST_BANDS[row["true_level"]]
        assert low <= float(row["rust_fraction"]) <= high
        if row["set"] == "carvana":
            assert row["background"] == "studio" and row["true_level"] == "none"
        else:
            assert row["file"].split("/")[1] == row["label"]
    assert read_image(out / "preview.png").shape[0] > 48 * 4
    assert (out / "config.json").is_file()


def test_same_seed_same_files_other_seed_other_files(tmp_path) -> None:
    first, second = synth(_tiny(tmp_path, "a")), synth(_tiny(tmp_path, "b"))
    other = synth(_tiny(tmp_path, "c", seed=1))
    rows = read_manifest(first / "manifest.csv")
    assert rows == read_manifest(second / "manifest.csv")
    for row in rows:
        np.testing.assert_array_equal(read_image(first / row["file"]), read_image(second / row["file"]))
        np.testing.assert_array_equal(read_mask(first / row["mask"]), read_mask(second / row["mask"]))
    assert rows != read_manifest(other / "manifest.csv")


def test_process_pool_draws_the_same_pixels(tmp_path, monkeypatch) -> None:
    import corrode.synth.run

    serial = synth(_tiny(tmp_path, "serial", workers=1, carvana_cars=0))
    monkeypatch.setattr(corrode.synth.run, "_POOL_MINIMUM", 1)
    pooled = synth(_tiny(tmp_path, "pooled", workers=2, carvana_cars=0))
    for row in read_manifest(serial / "manifest.csv"):
        np.testing.assert_array_equal(read_image(serial / row["file"]), read_image(pooled / row["file"]))


def test_label_noise_in_the_set(tmp_path) -> None:
    out = synth(_tiny(tmp_path, none=6, mild=4, moderate=4, severe=4, carvana_cars=0, label_noise=0.5))
    rows = read_manifest(out / "manifest.csv")
    moved = [r for r in rows if r["label"] != r["true_level"]]
    assert len(moved) == 9
    assert all(abs(levels.get(r["label"]).index - levels.get(r["true_level"]).index) == 1 for r in moved)


def test_refuses_a_non_empty_folder_and_overwrite_replaces_only_its_own(tmp_path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(UsageError, match="not empty"):
        synth(_tiny(tmp_path))
    synth(_tiny(tmp_path, overwrite=True, none=4))
    synth(_tiny(tmp_path, overwrite=True, none=1))
    assert (out / "notes.txt").read_text() == "mine"
    assert len(find_levels(out / "levels")["none"]) == 1  # nothing stale left from the run before


def test_config_is_validated(tmp_path) -> None:
    with pytest.raises(ConfigError):
        _tiny(tmp_path, size=8)
    with pytest.raises(ConfigError):
        _tiny(tmp_path, label_noise=1.5)
    with pytest.raises(ConfigError):
        _tiny(tmp_path, mild=-1)


# The command


def test_cli_writes_the_set_and_prints_json(tmp_path) -> None:
    out = tmp_path / "cli"
    arguments = [
        "synth",
        str(out),
        "--none",
        "2",
        "--mild",
        "1",
        "--moderate",
        "1",
        "--severe",
        "1",
        "--carvana-cars",
        "1",
        "--carvana-views",
        "2",
        "--size",
        "40",
        "--seed",
        "5",
    ]
    result = runner.invoke(app, [*arguments, "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["images"] == 7 and summary["carvana"] == 2
    assert summary["levels"] == {"none": 2, "mild": 1, "moderate": 1, "severe": 1}
    assert read_image(next((out / "levels" / "none").iterdir())).shape == (40, 40, 3)
    again = runner.invoke(app, arguments)
    assert again.exit_code == 2 and "not empty" in again.output
    replaced = runner.invoke(app, ["--quiet", *arguments, "--overwrite"])
    assert replaced.exit_code == 0


def test_cli_bad_option_is_a_usage_error(tmp_path) -> None:
    result = runner.invoke(app, ["synth", str(tmp_path / "x"), "--label-noise", "2"])
    assert result.exit_code == 2 and "label_noise" in result.output
    assert not (tmp_path / "x").exists()


def test_public_names() -> None:
    import corrode.synth
    from corrode.synth import MANIFEST, SynthConfig, draw_car, draw_scene, read_manifest, synth  # noqa: F401
    from corrode.synth.backgrounds import OUTDOOR
    from corrode.synth.scene import draw_scene as module_draw_scene

    assert module_draw_scene is draw_scene and MANIFEST == "manifest.csv"
    assert OUTDOOR == corrode.synth.OUTDOOR
    assert all(hasattr(corrode.synth, name) for name in corrode.synth.__all__)

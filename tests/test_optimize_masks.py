"""optimize-masks: layouts in and out, the CSV, masked images, --masks, a real segmenter, bad inputs."""

import csv
import hashlib
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from corrode.cli import app
from corrode.datasets import find_levels, level_mask_path
from corrode.errors import ConfigError, UsageError
from corrode.images import read_image, read_mask, write_image, write_mask
from corrode.optimize_masks import CSV_COLUMNS, OptimizeMasksConfig, find_inputs, optimize_masks

# Wide enough that Rich does not wrap a long tmp path inside an error line.
runner = CliRunner(env={"COLUMNS": "400"})
RED = (200, 30, 30)


def car(height: int = 40, width: int = 60) -> np.ndarray:
    mask = np.zeros((height, width), bool)
    mask[10:30, 8:52] = True
    return mask


def car_image(height: int = 40, width: int = 60, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = (40 + rng.random((height, width, 3)) * 60).astype(np.uint8)  # grey-blue noise background
    image[car(height, width)] = RED
    return image


class RedIsCar:
    """A stand-in segmenter: red pixels are the car; one noisy pixel makes a hole and one a speck."""

    def __init__(self) -> None:
        self.calls = 0

    def probabilities(self, image: np.ndarray) -> np.ndarray:
        self.calls += 1
        red = (image[..., 0] > 150) & (image[..., 1] < 80)
        probability = np.where(red, 0.9, 0.1).astype(np.float32)
        probability[20, 30] = 0.05  # a hole inside the car
        probability[2, 2] = 0.95  # a speck in the background
        return probability


def make_levels(root: Path, counts: dict[str, int]) -> list[Path]:
    files = []
    for level, count in counts.items():
        for index in range(count):
            path = root / level / f"{level}{index}.png"
            write_image(path, car_image(seed=index))
            files.append(path)
    return files


def digests(paths: list[Path]) -> dict[Path, str]:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def test_level_folders_with_a_model(tmp_path: Path) -> None:
    files = make_levels(tmp_path / "data", {"none": 2, "severe": 1})
    before = digests(files)
    out = tmp_path / "out"
    result = optimize_masks(OptimizeMasksConfig(tmp_path / "data", out), model=RedIsCar())
    assert not result.failed and len(result.rows) == 3
    # Masked images where train-gan reads them, masks where level_mask_path finds them.
    assert sorted(find_levels(out, required=())) == ["none", "severe"]
    for source in files:
        masked_path = out / source.parent.name / f"{source.stem}.png"
        mask_path = level_mask_path(masked_path, out / "masks")
        assert mask_path == out / "masks" / source.parent.name / f"{source.stem}.png"
        mask = read_mask(mask_path)
        assert np.array_equal(mask, car())  # hole filled, speck removed
        masked = read_image(masked_path)
        assert (masked[~mask] == 0).all()  # background black
        assert (masked[mask] == RED).all()  # the car kept as it was
    with result.csv_path.open() as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [r["file"] for r in rows] == ["none/none0.png", "none/none1.png", "severe/severe0.png"]
    first = rows[0]
    assert (first["level"], first["width"], first["height"]) == ("none", "60", "40")
    assert (first["holes_filled"], first["specks_removed"]) == ("1", "1")
    assert float(first["area_fraction"]) == pytest.approx(car().mean())
    assert 0.1 <= float(first["threshold"]) <= 0.9
    assert (out / "config.json").is_file()
    assert digests(files) == before


def test_plain_folder(tmp_path: Path) -> None:
    write_image(tmp_path / "photos" / "a.png", car_image())
    result = optimize_masks(OptimizeMasksConfig(tmp_path / "photos", tmp_path / "out"), model=RedIsCar())
    assert not result.failed
    assert read_mask(tmp_path / "out" / "masks" / "a.png").sum() == car().sum()
    assert read_image(tmp_path / "out" / "a.png").shape == (40, 60, 3)
    assert result.rows[0]["file"] == "a.png" and result.rows[0]["level"] == ""


def test_bad_images_are_reported_and_the_rest_done(tmp_path: Path) -> None:
    make_levels(tmp_path / "data", {"mild": 2})
    (tmp_path / "data" / "mild" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    (tmp_path / "data" / "mild" / "empty.jpg").write_bytes(b"")
    result = optimize_masks(
        OptimizeMasksConfig(tmp_path / "data", tmp_path / "out", batch_size=3), model=RedIsCar()
    )
    assert len(result.rows) == 2 and len(result.failed) == 2
    assert any("broken.png" in line for line in result.failed)
    assert any("empty.jpg: empty file" in line for line in result.failed)
    assert sorted(p.name for p in (tmp_path / "out" / "mild").iterdir()) == ["mild0.png", "mild1.png"]
    assert not list((tmp_path / "out").rglob("*.part*"))


def test_a_segmenter_that_fails_on_one_image_spoils_only_that_one(tmp_path: Path) -> None:
    from corrode.errors import CorrodeError

    class PickyBatch(RedIsCar):
        def probabilities_batch(self, images: list[np.ndarray]) -> list[np.ndarray]:
            if any(image.shape[1] == 61 for image in images):
                raise CorrodeError("cannot segment a 61 px wide image")
            return [self.probabilities(image) for image in images]

    make_levels(tmp_path / "data", {"none": 2})
    write_image(tmp_path / "data" / "none" / "odd.png", car_image(40, 61))
    result = optimize_masks(OptimizeMasksConfig(tmp_path / "data", tmp_path / "out"), model=PickyBatch())
    assert len(result.rows) == 2
    assert result.failed == [f"{tmp_path / 'data' / 'none' / 'odd.png'}: cannot segment a 61 px wide image"]


def test_same_stem_twice_in_a_level_keeps_both_under_their_suffix(tmp_path: Path) -> None:
    make_levels(tmp_path / "data", {"none": 1})
    write_image(tmp_path / "data" / "none" / "none0.jpg", car_image())
    result = optimize_masks(OptimizeMasksConfig(tmp_path / "data", tmp_path / "out"), model=RedIsCar())
    assert len(result.rows) == 2 and not result.failed
    names = sorted(p.name for p in (tmp_path / "out" / "none").iterdir())
    assert names == ["none0_jpg.png", "none0_png.png"]
    assert sorted(p.name for p in (tmp_path / "out" / "masks" / "none").iterdir()) == names


def test_cli_with_existing_masks_needs_no_model(tmp_path: Path) -> None:
    make_levels(tmp_path / "data", {"moderate": 2})
    noisy = car()
    noisy[15, 15] = False  # a hole
    noisy[0:2, 58:60] = True  # a speck in the corner
    write_mask(tmp_path / "given" / "moderate" / "moderate0.png", noisy)
    write_mask(tmp_path / "given" / "moderate" / "moderate1_mask.gif", noisy)  # Carvana-style name
    result = runner.invoke(
        app,
        [
            "optimize-masks",
            str(tmp_path / "data"),
            "--out",
            str(tmp_path / "out"),
            "--masks",
            str(tmp_path / "given"),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert '"done": 2' in result.stdout
    for stem in ("moderate0", "moderate1"):
        assert np.array_equal(read_mask(tmp_path / "out" / "masks" / "moderate" / f"{stem}.png"), car())
    with (tmp_path / "out" / "masks.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [r["threshold"] for r in rows] == ["", ""]  # no probability map, no threshold
    assert [(r["holes_filled"], r["specks_removed"]) for r in rows] == [("1", "1"), ("1", "1")]


def test_cli_missing_and_mismatched_masks(tmp_path: Path) -> None:
    make_levels(tmp_path / "data", {"none": 3})
    write_mask(tmp_path / "given" / "none" / "none0.png", car())
    write_mask(tmp_path / "given" / "none" / "none1.png", np.ones((5, 5), bool))
    result = runner.invoke(
        app,
        [
            "optimize-masks",
            str(tmp_path / "data"),
            "-o",
            str(tmp_path / "out"),
            "--masks",
            str(tmp_path / "given"),
        ],
    )
    assert result.exit_code == 1
    assert "none1.png: mask is 5x5 but its image none1.png is 60x40" in result.stderr
    assert "none2.png: no mask for this image in" in result.stderr
    assert "3 image(s): 1 masked" in result.stderr


def test_cli_with_a_trained_segmenter_file(tmp_path: Path) -> None:
    from corrode.checkpoint import save_model
    from corrode.config import to_dict
    from corrode.models.unet import CarSegmenter, SegmenterConfig

    config = SegmenterConfig(width=0.25, decoder_channels=(16, 16, 8, 8), size=32)
    weights = save_model(
        tmp_path / "seg.safetensors", CarSegmenter(config), kind="seg", config=to_dict(config)
    )
    make_levels(tmp_path / "data", {"none": 1, "mild": 1})
    result = runner.invoke(
        app,
        [
            "optimize-masks",
            str(tmp_path / "data"),
            "-o",
            str(tmp_path / "out"),
            "--seg",
            str(weights),
            "--device",
            "cpu",
        ],
    )
    assert result.exit_code == 0, result.output
    # An untrained model predicts nothing useful, but every output exists at the input's size.
    for level in ("none", "mild"):
        assert read_mask(tmp_path / "out" / "masks" / level / f"{level}0.png").shape == (40, 60)
        assert read_image(tmp_path / "out" / level / f"{level}0.png").shape == (40, 60, 3)


def test_usage_errors(tmp_path: Path) -> None:
    make_levels(tmp_path / "data", {"none": 1})
    data = str(tmp_path / "data")
    same = runner.invoke(app, ["optimize-masks", data, "-o", data, "--masks", data])
    assert same.exit_code == 2 and "must not be the input folder" in same.stderr
    inside = runner.invoke(app, ["optimize-masks", data, "-o", f"{data}/none/out", "--masks", data])
    assert inside.exit_code == 2
    both = runner.invoke(
        app, ["optimize-masks", data, "-o", str(tmp_path / "o"), "--seg", "x", "--masks", data]
    )
    assert both.exit_code == 2 and "not both" in both.stderr
    missing = runner.invoke(app, ["optimize-masks", str(tmp_path / "nowhere"), "-o", str(tmp_path / "o")])
    assert missing.exit_code == 2 and "no such folder" in missing.stderr
    no_model = runner.invoke(
        app, ["optimize-masks", data, "-o", str(tmp_path / "o"), "--seg", str(tmp_path / "nothing")]
    )
    assert no_model.exit_code == 2
    with pytest.raises(ConfigError, match="fraction"):
        OptimizeMasksConfig(tmp_path, tmp_path / "o", fraction=2.0)
    with pytest.raises(UsageError, match="no images"):
        (tmp_path / "void").mkdir()
        find_inputs(tmp_path / "void")
    assert not (tmp_path / "o").exists()


def test_synth_layout_and_masks_follow_the_level_data_rule(tmp_path: Path) -> None:
    # A `corrode synth` folder keeps its level folders in DATA/levels/: found as train-gan finds them.
    make_levels(tmp_path / "synth" / "levels", {"none": 1, "severe": 1})
    result = optimize_masks(OptimizeMasksConfig(tmp_path / "synth", tmp_path / "out"), model=RedIsCar())
    assert not result.failed and len(result.rows) == 2
    assert (tmp_path / "out" / "severe" / "severe0.png").is_file()
    with pytest.raises(UsageError, match=r"--masks .*nowhere: no such folder"):
        optimize_masks(OptimizeMasksConfig(tmp_path / "synth", tmp_path / "o2", masks=tmp_path / "nowhere"))

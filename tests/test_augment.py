"""Augmentation: partial-view boxes, alignment, binary masks, seeds, the offline command, bad inputs."""

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from corrode.augment import (
    AugmentConfig,
    PipelineConfig,
    augment,
    augment_batch,
    build_pipeline,
    partial_view_boxes,
    partial_views,
)
from corrode.cli import app
from corrode.errors import ConfigError, UsageError
from corrode.images import read_image, read_mask, write_image, write_mask

# Wide enough that Rich does not wrap a long tmp path inside an error line.
runner = CliRunner(env={"COLUMNS": "400"})


def car_mask(height: int = 48, width: int = 64, shift: int = 0) -> np.ndarray:
    """A car-like shape: a body, a cabin and two wheels, True on the car."""
    rows, columns = np.mgrid[:height, :width]
    body = (rows >= 20) & (rows < 34) & (columns >= 8 + shift) & (columns < 56 + shift)
    cabin = ((columns - 30 - shift) / 14) ** 2 + ((rows - 20) / 8) ** 2 < 1
    wheels = ((columns - 18 - shift) ** 2 + (rows - 34) ** 2 < 25) | (
        (columns - 46 - shift) ** 2 + (rows - 34) ** 2 < 25
    )
    return body | cabin | wheels


def white_car_batch(batch: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """Images whose content equals their mask: a white car on black."""
    masks = torch.stack([torch.from_numpy(car_mask(shift=i)).float()[None] for i in range(batch)])
    return masks.repeat(1, 3, 1, 1), masks


def test_pipeline_shapes_and_binary_masks() -> None:
    images, masks = white_car_batch()
    pipeline = build_pipeline(PipelineConfig(size=32))
    out_images, out_masks = augment_batch(images, masks, pipeline, seed=1)
    assert out_images.shape == (4, 3, 32, 32) and out_masks.shape == (4, 1, 32, 32)
    assert set(out_masks.unique().tolist()) <= {0.0, 1.0}
    assert out_images.min() >= 0.0 and out_images.max() <= 1.0


@pytest.mark.parametrize("seed", range(4))
def test_pipeline_keeps_image_and_mask_aligned(seed: int) -> None:
    images, masks = white_car_batch()
    # Every geometric op forced on; colour jitter off so the white car stays white.
    config = PipelineConfig(size=48, flip_probability=0.5, affine_probability=1.0, jitter_probability=0.0)
    out_images, out_masks = augment_batch(images, masks, build_pipeline(config), seed=seed)
    car_in_image = out_images.mean(dim=1, keepdim=True) > 0.5
    car_in_mask = out_masks > 0.5
    # Bilinear (image) and nearest (mask) may disagree on edge pixels only.
    disagree = (car_in_image != car_in_mask).float().mean().item()
    intersection = (car_in_image & car_in_mask).sum().item()
    union = (car_in_image | car_in_mask).sum().item()
    assert disagree < 0.03 and intersection / union > 0.9


def test_seed_gives_the_same_result_and_leaves_global_generator_alone() -> None:
    images, masks = white_car_batch()
    pipeline = build_pipeline(PipelineConfig(size=32))
    torch.manual_seed(123)
    first = augment_batch(images, masks, pipeline, seed=5)
    after = torch.rand(1)
    torch.manual_seed(123)
    second = augment_batch(images, masks, pipeline, seed=5)
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    assert torch.equal(torch.rand(1), after)  # the seeded call did not consume the global generator
    other = augment_batch(images, masks, pipeline, seed=6)
    assert not torch.equal(first[0], other[0])


def test_augment_batch_rejects_bad_shapes() -> None:
    images, masks = white_car_batch()
    pipeline = build_pipeline(PipelineConfig(size=32))
    with pytest.raises(UsageError, match="images"):
        augment_batch(images[:, :1], masks, pipeline)
    with pytest.raises(UsageError, match="masks"):
        augment_batch(images, masks[:2], pipeline)
    with pytest.raises(ConfigError, match="flip_probability"):
        PipelineConfig(flip_probability=2.0)


def test_partial_view_boxes_known_answers() -> None:
    mask = torch.zeros(1, 1, 100, 200)
    mask[..., 40:80, 20:180] = 1  # car 160 wide, 40 high
    # Views are 80 wide; height 40 grows to 80 (a square), centred on the car's rows 40..80.
    boxes = partial_view_boxes(mask, 0.5, margin=0.0)
    assert boxes.tolist() == [[[20, 20, 100, 100], [60, 20, 140, 100], [100, 20, 180, 100]]]
    # A margin of 0.25 adds 10 rows above and below: 60 high, still grown to 80.
    assert partial_view_boxes(mask, 0.5, margin=0.25)[0, 0].tolist() == [20, 20, 100, 100]
    # A tall car: the view (20 wide) widens to the car's height (90), shifted to stay inside.
    tall = torch.zeros(1, 1, 100, 200)
    tall[..., 5:95, 0:40] = 1
    boxes = partial_view_boxes(tall, 0.5, margin=0.0)[0].tolist()
    assert boxes == [[0, 5, 90, 95], [0, 5, 90, 95], [0, 5, 90, 95]]
    # No car: the whole image for every view.
    assert partial_view_boxes(torch.zeros(1, 1, 10, 20))[0].tolist() == [[0, 0, 20, 10]] * 3


def test_partial_view_box_cannot_exceed_the_image() -> None:
    mask = torch.zeros(1, 1, 30, 300)
    mask[..., 10:20, 0:300] = 1  # views 150 wide in an image only 30 high
    boxes = partial_view_boxes(mask, 0.5, margin=0.0)[0].tolist()
    assert boxes == [[0, 0, 150, 30], [75, 0, 225, 30], [150, 0, 300, 30]]


def test_partial_views_are_aligned_and_show_the_right_part() -> None:
    images, masks = white_car_batch(2)
    images[:, 0, :, :20] = 0.5  # mark the left of the picture in red
    views = partial_views(images, masks, 32)
    assert list(views) == ["left", "centre", "right"]
    for view_images, view_masks in views.values():
        assert view_images.shape == (2, 3, 32, 32) and view_masks.shape == (2, 1, 32, 32)
        assert set(view_masks.unique().tolist()) <= {0.0, 1.0}
        agree = ((view_images[:, 1:2] > 0.5) == (view_masks > 0.5)).float().mean().item()
        assert agree > 0.97
    left_red = views["left"][0][:, 0].mean().item()
    right_red = views["right"][0][:, 0].mean().item()
    assert left_red > right_red


def _write_pairs(root: Path, count: int = 3, layout: str = "project") -> list[Path]:
    rng = np.random.default_rng(0)
    files = []
    for index in range(count):
        mask = car_mask(shift=index)
        image = (rng.random((48, 64, 3)) * 80).astype(np.uint8)
        image[mask] = (200, 40, 40)
        if layout == "carvana":
            image_path = root / "train" / f"car{index}.jpg"
            mask_path = root / "train_masks" / f"car{index}_mask.gif"
        else:
            image_path = root / "images" / f"car{index}.png"
            mask_path = root / "masks" / f"car{index}.png"
        write_image(image_path, image)
        write_mask(mask_path, mask)
        files += [image_path, mask_path]
    return files


def _digests(paths: list[Path]) -> dict[Path, str]:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def test_cli_partial_views_end_to_end(tmp_path: Path) -> None:
    files = _write_pairs(tmp_path / "src")
    before = _digests(files)
    result = runner.invoke(app, ["augment", str(tmp_path / "src"), str(tmp_path / "out"), "--size", "32"])
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in (tmp_path / "out" / "images").iterdir())
    assert names == sorted(f"car{i}_{v}.png" for i in range(3) for v in ("left", "centre", "right"))
    for name in names:
        image = read_image(tmp_path / "out" / "images" / name)
        mask = read_mask(tmp_path / "out" / "masks" / name)
        assert image.shape == (32, 32, 3) and mask.shape == (32, 32)
        # The car is red in the input: its pixels in the output are the mask's.
        red = (image[..., 0] > 150) & (image[..., 1] < 100)
        assert (red == mask).mean() > 0.95
    assert (tmp_path / "out" / "config.json").is_file()
    assert _digests(files) == before


def test_cli_random_preset_carvana_layout_copies_and_seed(tmp_path: Path) -> None:
    _write_pairs(tmp_path / "src", 2, layout="carvana")
    arguments = ["augment", str(tmp_path / "src"), "-p", "random", "-n", "3", "--size", "32", "--json"]
    first = runner.invoke(app, [*arguments[:2], str(tmp_path / "a"), *arguments[2:]])
    second = runner.invoke(app, [*arguments[:2], str(tmp_path / "b"), *arguments[2:]])
    assert first.exit_code == 0 and second.exit_code == 0, first.output
    assert '"written": 6' in first.stdout
    names = sorted(p.name for p in (tmp_path / "a" / "images").iterdir())
    assert names == [f"car{i}_rand0{c}.png" for i in range(2) for c in range(3)]
    for name in names:
        assert np.array_equal(
            read_image(tmp_path / "a" / "images" / name), read_image(tmp_path / "b" / "images" / name)
        )
        assert set(np.unique(np.asarray(read_mask(tmp_path / "a" / "masks" / name)))) <= {False, True}


def test_presets_compose(tmp_path: Path) -> None:
    _write_pairs(tmp_path / "src", 1)
    config = AugmentConfig(
        tmp_path / "src",
        tmp_path / "out",
        presets=("partial-views", "random"),
        copies=2,
        pipeline=PipelineConfig(size=32),
    )
    result = augment(config)
    assert result.written == 6 and not result.failed
    names = sorted(p.stem for p in (tmp_path / "out" / "masks").iterdir())
    assert names == sorted(f"car0_{v}_rand0{c}" for v in ("left", "centre", "right") for c in range(2))


def test_bad_pairs_are_reported_and_the_rest_written(tmp_path: Path) -> None:
    _write_pairs(tmp_path / "src", 4)
    (tmp_path / "src" / "images" / "car1.png").write_bytes(b"not an image at all")
    write_mask(tmp_path / "src" / "masks" / "car2.png", np.zeros((48, 64), bool))  # no car
    write_mask(tmp_path / "src" / "masks" / "car3.png", np.ones((10, 10), bool))  # wrong size
    result = runner.invoke(
        app, ["augment", str(tmp_path / "src"), str(tmp_path / "out"), "--size", "32", "--batch-size", "4"]
    )
    assert result.exit_code == 1
    assert "car1.png: not an image" in result.stderr
    assert "car2.png: mask is empty" in result.stderr
    assert "car3.png: mask is 10x10" in result.stderr
    written = sorted(p.name for p in (tmp_path / "out" / "images").iterdir())
    assert written == ["car0_centre.png", "car0_left.png", "car0_right.png"]
    assert not [p for p in (tmp_path / "out").rglob("*.part*")]


def test_usage_errors(tmp_path: Path) -> None:
    _write_pairs(tmp_path / "src", 1)
    same = runner.invoke(app, ["augment", str(tmp_path / "src"), str(tmp_path / "src")])
    assert same.exit_code == 2 and "must not be the input folder" in same.stderr
    copies = runner.invoke(app, ["augment", str(tmp_path / "src"), str(tmp_path / "out"), "-n", "2"])
    assert copies.exit_code == 2 and "random" in copies.stderr
    unknown = runner.invoke(app, ["augment", str(tmp_path / "src"), str(tmp_path / "out"), "-p", "mirror"])
    assert unknown.exit_code == 2 and "unknown preset mirror" in unknown.stderr
    missing = runner.invoke(app, ["augment", str(tmp_path / "nowhere"), str(tmp_path / "out")])
    assert missing.exit_code == 2 and "no such folder" in missing.stderr
    assert not (tmp_path / "out").exists()

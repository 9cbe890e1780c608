"""corrode.render / corrode.batch / `corrode render`: composite, sizes, batches, bad inputs, CLI."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from corrode import levels
from corrode import render as render_module
from corrode.batch import collect_inputs, output_path, previous_outputs
from corrode.cli import app
from corrode.distributed import DistContext
from corrode.errors import ConfigError, UsageError
from corrode.render import (
    Models,
    RenderConfig,
    Renderer,
    Square,
    car_square,
    composite,
    crop_square,
    feather_alpha,
    render,
    timeline_frame_count,
)

runner = CliRunner()
RUST = torch.tensor([0.55, 0.22, 0.08]).view(1, 3, 1, 1)


class TintTranslator:
    """Stands in for the GAN: blends every pixel towards rust, more for worse levels."""

    image_size = 32
    levels = levels.RUSTY_NAMES

    def __init__(self) -> None:
        self.calls: list[tuple[int, str]] = []

    def to_level(self, images: torch.Tensor, level: str) -> torch.Tensor:
        assert images.ndim == 4 and images.shape[1:] == (3, 32, 32)
        self.calls.append((images.shape[0], level))
        weight = 0.25 * levels.get(level).index
        return images * (1 - weight) + RUST * weight


class EllipseSegmenter:
    """Stands in for the segmenter: a confident ellipse in the middle of every image."""

    def probabilities_batch(self, images: list[np.ndarray]) -> list[np.ndarray]:
        return [ellipse(image.shape[:2]).astype(np.float32) * 0.9 + 0.05 for image in images]


def ellipse(shape: tuple[int, int], fill: float = 0.3) -> np.ndarray:
    height, width = shape
    ys, xs = np.mgrid[0:height, 0:width]
    return ((xs - width / 2) / (width * fill)) ** 2 + ((ys - height / 2) / (height * fill)) ** 2 <= 1


def photo(width: int, height: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


def save(path: Path, array: np.ndarray) -> Path:
    Image.fromarray(array).save(path)
    return path


def fake_models(segmenter: bool = True) -> Models:
    return Models(TintTranslator(), EllipseSegmenter() if segmenter else None, [])


# --- geometry and compositing -------------------------------------------------------------


def test_car_square_is_centred_and_grown_by_margin() -> None:
    mask = np.zeros((50, 80), bool)
    mask[10:30, 20:60] = True  # 40 x 20 box
    square = car_square(mask, 0.25)
    assert square.side == 60
    assert (square.x0, square.y0) == (20 + 20 - 30, 10 + 10 - 30)
    with pytest.raises(ValueError):
        car_square(np.zeros((5, 5), bool), 0.1)


def test_crop_square_pads_outside_with_black() -> None:
    image = np.full((10, 10, 3), 200, np.uint8)
    crop = crop_square(image, Square(-3, 5, 8))
    assert crop.shape == (8, 8, 3)
    assert (crop[:, :3] == 0).all() and (crop[5:, :] == 0).all()
    assert (crop[:5, 3:] == 200).all()


def test_feather_is_zero_outside_and_one_deep_inside() -> None:
    mask = np.zeros((40, 40), bool)
    mask[5:35, 5:35] = True
    alpha = feather_alpha(mask, 4.0)
    assert (alpha[~mask] == 0).all()
    assert alpha[20, 20] == pytest.approx(1.0)
    assert 0 < alpha[5, 20] < alpha[7, 20] < 1


@pytest.mark.parametrize("keep_detail", [True, False])
@pytest.mark.parametrize(("width", "height"), [(97, 61), (33, 120), (64, 64)])
def test_composite_leaves_background_bit_identical(width: int, height: int, keep_detail: bool) -> None:
    image = photo(width, height, seed=width)
    mask = ellipse((height, width))
    renderer = Renderer(TintTranslator(), keep_detail=keep_detail, feather=2.0)
    (result,) = renderer.render([image], ["severe"], masks=[mask])
    out = result.outputs["severe"]
    assert out.shape == image.shape and out.dtype == np.uint8
    # Zero changed pixels outside the (dilated) car mask — in fact outside the mask itself.
    dilated = cv2.dilate(mask.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    assert not (out != image).any(axis=2)[~dilated].any()
    assert not (out != image).any(axis=2)[~mask].any()
    # ... and the car did change, towards rust.
    inner = cv2.erode(mask.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    changed = np.abs(out.astype(int) - image.astype(int))[inner].mean()
    assert changed > 20


def test_composite_of_unchanged_generator_output_keeps_photo() -> None:
    image = photo(70, 50)
    mask = ellipse((50, 70))
    square = car_square(mask, 0.1)
    from corrode.render import generator_input

    source, _ = generator_input(image, mask, square, 32)
    out = composite(image, mask, square, source, source, feather=2.0, keep_detail=True)
    assert np.array_equal(out, image)


def test_levels_get_rustier() -> None:
    image = np.full((60, 90, 3), 180, np.uint8)
    mask = ellipse((60, 90))
    (result,) = Renderer(TintTranslator()).render([image], levels.RUSTY_NAMES, masks=[mask])
    distances = [
        np.abs(result.outputs[n].astype(int) - image.astype(int))[mask].mean() for n in levels.RUSTY_NAMES
    ]
    assert distances[0] < distances[1] < distances[2]


def test_segmenter_masks_are_full_size(tmp_path: Path) -> None:
    pytest.importorskip("corrode.masks")
    image = photo(301, 211)
    renderer = Renderer(TintTranslator(), EllipseSegmenter(), mask_resolution=64)
    (mask,) = renderer.masks([image])
    assert mask.shape == (211, 301)
    expected = ellipse((211, 301))
    assert (mask == expected).mean() > 0.97


def test_no_composite_gives_masked_square() -> None:
    image = photo(80, 50)
    mask = ellipse((50, 80))
    (result,) = Renderer(TintTranslator(), composite=False).render([image], ["mild"], masks=[mask])
    out = result.outputs["mild"]
    assert out.shape == (32, 32, 3)
    assert (out[0, 0] == 0).all()  # background stays black, as in the paper's outputs


# --- batch helpers --------------------------------------------------------------------------


def test_output_names(tmp_path: Path) -> None:
    source = tmp_path / "car.JPG"
    assert output_path(source, "severe") == tmp_path / "car_severe.JPG"
    assert output_path(source, "mild", out_dir=tmp_path / "o") == tmp_path / "o" / "car_mild.JPG"
    assert output_path(tmp_path / "car.gif", "mild") == tmp_path / "car_mild.png"
    assert output_path(source, "mild", suffix="png") == tmp_path / "car_mild.png"
    assert output_path(source, "mild", out=tmp_path / "x.png") == tmp_path / "x.png"
    assert output_path(source, "mild", out=tmp_path / "x.png", single=False) == tmp_path / "x_mild.png"
    with pytest.raises(UsageError):
        output_path(source, "mild", suffix="xyz")


def test_previous_outputs_are_recognised(tmp_path: Path) -> None:
    paths = [tmp_path / "a.jpg", tmp_path / "a_severe.jpg", tmp_path / "b_severe.jpg"]
    assert previous_outputs(paths, ["severe", "grid"]) == {tmp_path / "a_severe.jpg"}


def test_config_validates() -> None:
    with pytest.raises(ConfigError):
        RenderConfig(levels=("none",))
    with pytest.raises(UsageError):
        RenderConfig(levels=("rusty",))
    with pytest.raises(ConfigError):
        RenderConfig(timeline=Path("x.mp4"))
    with pytest.raises(ConfigError):
        RenderConfig(out=Path("a.png"), out_dir=Path("b"))


# --- the work function ----------------------------------------------------------------------


def _photos(folder: Path, count: int, masks: Path | None = None) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        width, height = 41 + 10 * index, 37 + 3 * index
        paths.append(save(folder / f"car{index}.png", photo(width, height, seed=index)))
        if masks is not None:
            masks.mkdir(parents=True, exist_ok=True)
            Image.fromarray(ellipse((height, width)).astype(np.uint8) * 255).save(masks / f"car{index}.png")
    return paths


def test_exif_rotated_input_keeps_upright_size(tmp_path: Path) -> None:
    source = tmp_path / "rotated.jpg"
    image = Image.fromarray(photo(51, 29))
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90° clockwise on display: upright photo is 29 x 51
    image.save(source, exif=exif, quality=95)
    pytest.importorskip("corrode.masks")
    summary = render(RenderConfig(inputs=(str(source),), out_dir=tmp_path / "out"), models=fake_models())
    assert summary.failed == 0 and summary.written == 1
    with Image.open(tmp_path / "out" / "rotated_severe.jpg") as out:
        assert out.size == (29, 51)


def test_odd_sizes_round_trip_through_files(tmp_path: Path) -> None:
    paths = _photos(tmp_path / "in", 3, masks=tmp_path / "masks")
    cfg = RenderConfig(inputs=(str(tmp_path / "in"),), out_dir=tmp_path / "out", mask=tmp_path / "masks")
    summary = render(cfg, models=fake_models(segmenter=False))
    assert summary.written == 3 and summary.failed == 0
    for path in paths:
        with Image.open(path) as original, Image.open(tmp_path / "out" / f"{path.stem}_severe.png") as out:
            assert out.size == original.size


def test_batch_resume_skips_existing_outputs(tmp_path: Path) -> None:
    _photos(tmp_path / "in", 3, masks=tmp_path / "masks")
    cfg = RenderConfig(inputs=(str(tmp_path / "in"),), out_dir=tmp_path / "out", mask=tmp_path / "masks")
    models = fake_models(segmenter=False)
    assert render(cfg, models=models).written == 3
    first = {p: p.stat().st_mtime_ns for p in (tmp_path / "out").iterdir()}
    calls_before = len(models.translator.calls)
    again = render(cfg, models=models)
    assert (again.written, again.skipped) == (0, 3)
    assert len(models.translator.calls) == calls_before  # nothing re-rendered
    (tmp_path / "out" / "car1_severe.png").unlink()
    third = render(cfg, models=models)
    assert (third.written, third.skipped) == (1, 2)
    assert [o.input.name for o in third.outcomes if o.status == "written"] == ["car1.png"]
    for path, mtime in first.items():
        if path.name != "car1_severe.png":
            assert path.stat().st_mtime_ns == mtime
    forced = render(RenderConfig(**{**cfg.__dict__, "overwrite": True}), models=models)
    assert forced.written == 3


def test_rerun_beside_inputs_does_not_render_its_own_outputs(tmp_path: Path) -> None:
    _photos(tmp_path, 2, masks=tmp_path / "masks")
    cfg = RenderConfig(inputs=(str(tmp_path),), mask=tmp_path / "masks")
    assert render(cfg, models=fake_models(False)).written == 2
    again = render(cfg, models=fake_models(False))
    assert again.inputs == 2 and again.skipped == 2 and again.failed == 0


def test_bad_inputs_are_reported_while_others_render(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    _photos(folder, 2)
    (folder / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"garbage" * 10)
    (folder / "empty.png").write_bytes(b"")
    notes = tmp_path / "notes.txt"
    notes.write_text("not an image")
    from tests.test_images import bomb_png

    bomb_png(folder / "huge.png")
    flat = save(folder / "flat.png", np.zeros((20, 20, 3), np.uint8))
    pytest.importorskip("corrode.masks")

    class NoCarOnFlat(EllipseSegmenter):
        def probabilities_batch(self, images):
            return [
                np.zeros(i.shape[:2], np.float32) if not i.any() else p
                for i, p in zip(images, super().probabilities_batch(images), strict=True)
            ]

    cfg = RenderConfig(inputs=(str(folder), str(notes)), out_dir=tmp_path / "out", batch_size=3)
    summary = render(cfg, models=Models(TintTranslator(), NoCarOnFlat(), []))
    failed = {o.input.name: o.error for o in summary.outcomes if o.status == "failed"}
    assert set(failed) == {"corrupt.jpg", "empty.png", "huge.png", "notes.txt", flat.name}
    for name, error in failed.items():
        assert error is not None and name in error
    assert "too many pixels" in failed["huge.png"]
    assert summary.written == 2
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["car0_severe.png", "car1_severe.png"]


def test_never_overwrites_an_input(tmp_path: Path) -> None:
    (source,) = _photos(tmp_path, 1, masks=tmp_path / "masks")
    before = source.read_bytes()
    cfg = RenderConfig(inputs=(str(source),), out=source, mask=tmp_path / "masks")
    summary = render(cfg, models=fake_models(False))
    assert summary.failed == 1 and "overwrite an input" in summary.outcomes[0].error
    assert source.read_bytes() == before


def test_level_all_writes_levels_grid_and_timeline(tmp_path: Path) -> None:
    (source,) = _photos(tmp_path / "in", 1, masks=tmp_path / "masks")
    cfg = RenderConfig(
        inputs=(str(source),),
        levels=levels.RUSTY_NAMES,
        grid=True,
        out_dir=tmp_path / "out",
        mask=tmp_path / "masks",
        timeline=tmp_path / "out" / "t.gif",
        timeline_frames=5,
    )
    summary = render(cfg, models=fake_models(False))
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["car0_grid.png", "car0_mild.png", "car0_moderate.png", "car0_severe.png", "t.gif"]
    assert summary.written == 5
    with Image.open(tmp_path / "out" / "t.gif") as gif:
        assert gif.n_frames == timeline_frame_count(3, 5) == 16
        assert gif.info.get("loop") == 0
    with Image.open(tmp_path / "out" / "car0_grid.png") as grid:
        assert grid.width >= 4 * 41 and grid.height < 2 * 41  # four cells side by side, one row


def test_timeline_needs_one_input_and_all_levels(tmp_path: Path) -> None:
    _photos(tmp_path / "in", 2)
    with pytest.raises(UsageError, match="exactly one input"):
        render(
            RenderConfig(
                inputs=(str(tmp_path / "in"),), timeline=tmp_path / "t.gif", levels=levels.RUSTY_NAMES
            ),
            models=fake_models(),
        )
    with pytest.raises(UsageError, match="--level all"):
        render(
            RenderConfig(inputs=(str(tmp_path / "in" / "car0.png"),), timeline=tmp_path / "t.gif"),
            models=fake_models(),
        )


def test_ranks_render_disjoint_shares(tmp_path: Path) -> None:
    _photos(tmp_path / "in", 5, masks=tmp_path / "masks")
    cfg = RenderConfig(inputs=(str(tmp_path / "in"),), out_dir=tmp_path / "out", mask=tmp_path / "masks")
    written: list[Path] = []
    for rank in range(2):
        context = DistContext(rank, 2, rank, torch.device("cpu"))
        summary = render(cfg, models=fake_models(False), context=context)
        written.extend(o.output for o in summary.outcomes if o.status == "written")
    assert len(written) == len(set(written)) == 5


def test_stdin_paths(tmp_path: Path) -> None:
    import io

    paths = _photos(tmp_path / "in", 3)
    stream = io.StringIO(f"{paths[0]}\n\n# a comment\n{paths[2]}\n")
    assert collect_inputs(["-"], stdin=stream) == [paths[0], paths[2]]
    with pytest.raises(UsageError):
        collect_inputs(["-"], stdin=io.StringIO(""))


# --- the command ----------------------------------------------------------------------------


@pytest.fixture
def fake_loader(monkeypatch: pytest.MonkeyPatch) -> list[RenderConfig]:
    seen: list[RenderConfig] = []

    def load(cfg: RenderConfig, *, need_segmenter: bool) -> Models:
        seen.append(cfg)
        return Models(TintTranslator(), EllipseSegmenter() if need_segmenter else None, ["a note"])

    monkeypatch.setattr(render_module.models, "load_models", load)
    return seen


def test_cli_json_lines_parse_and_exit_code(tmp_path: Path, fake_loader: list[RenderConfig]) -> None:
    _photos(tmp_path / "in", 2, masks=tmp_path / "masks")
    (tmp_path / "in" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    args = [
        "render",
        str(tmp_path / "in"),
        "--out-dir",
        str(tmp_path / "out"),
        "--mask",
        str(tmp_path / "masks"),
        "--json",
        "--level",
        "all",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    statuses = sorted((r["status"], r["level"]) for r in records)
    assert statuses.count(("failed", None)) == 1
    assert len([s for s in statuses if s[0] == "written"]) == 8  # 2 photos x (3 levels + grid)
    assert all(Path(r["output"]).exists() for r in records if r["status"] == "written")
    assert "broken.png" in result.stderr and "1 failed" in result.stderr


def test_cli_reads_paths_from_stdin(tmp_path: Path, fake_loader: list[RenderConfig]) -> None:
    paths = _photos(tmp_path / "in", 3, masks=tmp_path / "masks")
    stdin = f"{paths[0]}\n{paths[2]}\n"
    result = runner.invoke(
        app, ["render", "-", "-o", str(tmp_path / "out"), "--mask", str(tmp_path / "masks")], input=stdin
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["car0_severe.png", "car2_severe.png"]


def test_cli_single_output_file(tmp_path: Path, fake_loader: list[RenderConfig]) -> None:
    (source,) = _photos(tmp_path, 1, masks=tmp_path / "masks")
    target = tmp_path / "result.jpg"
    result = runner.invoke(
        app,
        ["render", str(source), "--out", str(target), "--level", "mild", "--mask", str(tmp_path / "masks")],
    )
    assert result.exit_code == 0, result.output
    with Image.open(target) as out:
        assert out.format == "JPEG" and out.size == (41, 37)


def test_cli_missing_models_say_how_to_get_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (source,) = _photos(tmp_path, 1)
    monkeypatch.setenv("CORRODE_HOME", str(tmp_path / "home"))
    result = runner.invoke(app, ["render", str(source), "-o", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "no gan model" in result.stderr and "corrode demo" in result.stderr
    result = runner.invoke(app, ["render", str(source), "--gan", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "nope" in result.stderr


def test_cli_bad_level_is_usage_error(tmp_path: Path) -> None:
    (source,) = _photos(tmp_path, 1)
    result = runner.invoke(app, ["render", str(source), "--level", "rusty"])
    assert result.exit_code == 2 and "unknown level" in result.stderr


# --- real (tiny) models ---------------------------------------------------------------------


def tiny_gan(path: Path, size: int = 32, base_channels: int = 4) -> Path:
    from corrode.checkpoint import save_model
    from corrode.config import to_dict
    from corrode.models.cyclegan import CycleGanConfig, GeneratorSet

    torch.manual_seed(0)
    config = CycleGanConfig(base_channels=base_channels, residual_blocks=1)
    return save_model(
        path, GeneratorSet(config), kind="gan", config={"model": to_dict(config), "image_size": size}
    )


def tiny_seg(path: Path) -> Path:
    from corrode.checkpoint import save_model
    from corrode.config import to_dict
    from corrode.models.unet import CarSegmenter, SegmenterConfig

    torch.manual_seed(0)
    config = SegmenterConfig(width=0.25, decoder_channels=(8, 8, 8, 8), size=32)
    return save_model(path, CarSegmenter(config), kind="seg", config=to_dict(config))


def test_cli_end_to_end_with_real_tiny_models(tmp_path: Path) -> None:
    (source,) = _photos(tmp_path / "in", 1)
    gan, seg = tiny_gan(tmp_path / "gan.safetensors"), tiny_seg(tmp_path / "seg.safetensors")
    args = [
        "render",
        str(source),
        "--gan",
        str(gan),
        "--seg",
        str(seg),
        "-o",
        str(tmp_path / "out"),
        "--level",
        "all",
        "--timeline",
        str(tmp_path / "out" / "t.gif"),
        "--json",
    ]
    result = runner.invoke(app, args)
    # An untrained segmenter may find no car; either way the command must answer in one clear line.
    records = [json.loads(line) for line in result.stdout.splitlines()]
    if result.exit_code == 0:
        assert {r["level"] for r in records} == {"mild", "moderate", "severe", "grid", "timeline"}
    else:
        assert result.exit_code == 1 and "no car" in result.stderr and len(records) == 1


def test_real_tiny_gan_renders_with_given_mask(tmp_path: Path) -> None:
    (source,) = _photos(tmp_path / "in", 1, masks=tmp_path / "masks")
    gan = tiny_gan(tmp_path / "gan.safetensors")
    cfg = RenderConfig(
        inputs=(str(source),),
        gan=str(gan),
        mask=tmp_path / "masks",
        out_dir=tmp_path / "out",
        precision="fp32",
    )
    summary = render(cfg)
    assert summary.written == 1 and summary.failed == 0
    with Image.open(tmp_path / "out" / "car0_severe.png") as out:
        rendered = np.asarray(out)
    original = np.asarray(Image.open(source))
    mask = ellipse(original.shape[:2])
    assert not (rendered != original).any(axis=2)[~mask].any()


def test_onnx_engine_matches_torch(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from corrode.gan.onnx import OnnxTranslator
    from corrode.translate import Translator

    translator = Translator.load(tiny_gan(tmp_path / "gan.safetensors"), device="cpu", precision="fp32")
    fast = OnnxTranslator.from_translator(translator, ["mild", "severe"])
    images = torch.rand(2, 3, 32, 32)
    for level in ("mild", "severe"):
        expected = translator.to_level(images, level)
        assert torch.allclose(fast.to_level(images, level), expected, atol=1e-4)
    with pytest.raises(UsageError):
        fast.to_level(images, "moderate")


@pytest.mark.parametrize("kind", ["corrupt", "wrong-kind", "other-architecture"])
def test_bad_model_files_give_clear_errors(tmp_path: Path, kind: str) -> None:
    (source,) = _photos(tmp_path, 1, masks=tmp_path / "masks")
    bad = tmp_path / "gan.safetensors"
    if kind == "corrupt":
        tiny_gan(bad)
        bad.write_bytes(bad.read_bytes()[:200])
    elif kind == "wrong-kind":
        tiny_seg(bad)
    else:
        tiny_gan(bad)
        from safetensors import safe_open
        from safetensors.torch import save_file

        with safe_open(str(bad), framework="pt") as handle:
            metadata = handle.metadata()
            state = {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118
        model = json.loads(metadata["config"])
        model["model"]["base_channels"] = 8  # the config now disagrees with the weights
        save_file(state, str(bad), metadata={**metadata, "config": json.dumps(model)})
    result = runner.invoke(app, ["render", str(source), "--gan", str(bad), "--mask", str(tmp_path / "masks")])
    assert result.exit_code == 1, result.output
    # One message (Rich wraps it at the terminal's width), naming the file; no traceback.
    line = " ".join(result.stderr.split())
    assert line.startswith("error:") and line.count("error:") == 1 and str(bad) in line
    assert "Traceback" not in result.output
    expected = {
        "corrupt": "safetensors",
        "wrong-kind": "expected a 'gan' model",
        "other-architecture": "architecture",
    }
    assert expected[kind] in line


def test_outputs_get_ordinary_file_mode(tmp_path: Path) -> None:
    import os

    (source,) = _photos(tmp_path, 1, masks=tmp_path / "masks")
    render(RenderConfig(inputs=(str(source),), mask=tmp_path / "masks"), models=fake_models(False))
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "car0_severe.png").stat().st_mode & 0o777 == 0o666 & ~umask


def test_composite_resamples_like_resizing_the_whole_square() -> None:
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (90, 130, 3), dtype=np.uint8)
    mask = ellipse((90, 130), fill=0.35)
    square = car_square(mask, 0.2)
    source = np.zeros((32, 32, 3), np.float32)
    generated = rng.random((32, 32, 3), dtype=np.float32)
    out = composite(image, mask, square, source, generated, feather=0.0, keep_detail=True)
    # Reference: resize the change over the whole square, cut the photo's part, add it inside the mask.
    full = cv2.resize(generated, (square.side, square.side), interpolation=cv2.INTER_LINEAR)
    window = crop_square(np.zeros((90, 130), np.uint8), square)  # only for the shape bookkeeping
    assert window.shape == (square.side, square.side)
    ys, xs = np.nonzero(mask)
    expected = np.clip(np.rint(image[ys, xs] + full[ys - square.y0, xs - square.x0] * 255), 0, 255)
    assert np.abs(out[ys, xs].astype(int) - expected.astype(int)).max() <= 1


# --- --gan-size, tiling ---------------------------------------------------------------------------


class AnySizeTint(TintTranslator):
    """TintTranslator at whatever size it is given (fully convolutional, like the real generator)."""

    def to_level(self, images: torch.Tensor, level: str) -> torch.Tensor:
        self.calls.append((images.shape[-1], level))
        weight = 0.25 * levels.get(level).index
        return images * (1 - weight) + RUST * weight


def _constant_car(side: int) -> torch.Tensor:
    car = torch.from_numpy(ellipse((side, side), fill=0.4)).float()
    colour = torch.tensor([0.2, 0.4, 0.8]).view(1, 3, 1, 1)
    return colour * car[None, None]


def test_window_weights_sum_to_one_across_tiles() -> None:
    from corrode.tiling import tile_starts, window

    for length, regular in ((192, True), (200, False)):
        tile, overlap = 64, 32
        total = torch.zeros(length)
        starts = tile_starts(length, tile, overlap)
        for start in starts:
            assert start % 4 == 0
            total[start : start + tile] += window(tile, overlap, start > 0, start + tile < length)
        assert starts[-1] == length - tile and torch.all(total > 0)
        if regular:
            # At the planned stride the raised cosines of neighbours complement each other exactly.
            assert torch.allclose(total, torch.ones(length), atol=1e-6)


def test_tiled_translation_of_a_constant_car_matches_whole(tmp_path: Path) -> None:
    from corrode.tiling import translate_large
    from corrode.translate import Translator

    translator = Translator.load(
        tiny_gan(tmp_path / "gan.safetensors", base_channels=8), device="cpu", precision="fp32"
    )
    image = _constant_car(160)

    def run(images: torch.Tensor) -> torch.Tensor:
        return translator.to_level(images, "severe")

    whole = run(image)
    tiled = translate_large(run, image, tile=96, overlap=48, module=translator.generators)
    assert tiled.shape == whole.shape
    assert (tiled - whole).abs().max() < 0.02
    # Tiles normalised by their own statistics do not match: the shared statistics are what agree.
    alone = translate_large(run, image, tile=96, overlap=48)
    assert (alone - whole).abs().mean() > 5 * (tiled - whole).abs().mean()


@pytest.mark.parametrize("gan_size", ["native", 48])
def test_gan_size_keeps_size_background_and_soft_edge(gan_size: int | str) -> None:
    image = photo(90, 70, seed=3)
    mask = ellipse((70, 90))
    translator = AnySizeTint()
    renderer = Renderer(translator, gan_size=gan_size, max_side=2048)
    (rendering,) = renderer.render([image], ["severe"], [mask])
    out = rendering.outputs["severe"]
    assert out.shape == image.shape
    assert np.array_equal(out[~mask], image[~mask])
    side = rendering.square.side
    expected = (side + 2) // 4 * 4 if gan_size == "native" else 48
    assert translator.calls == [(expected, "severe")] and rendering.source.shape[0] == expected
    # The soft edge lies inside the mask: the car's rim changes less than its middle.
    change = np.abs(out.astype(int) - image.astype(int)).sum(axis=2)
    rim = mask & ~cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    assert change[rim].mean() < change[cv2.erode(mask.astype(np.uint8), np.ones((9, 9))) > 0].mean()


def test_native_is_capped_by_max_side() -> None:
    translator = AnySizeTint()
    renderer = Renderer(translator, gan_size="native", max_side=40)
    renderer.render([photo(90, 70)], ["mild"], [ellipse((70, 90))])
    assert translator.calls == [(40, "mild")]


def test_tiled_render_with_real_generator_keeps_background(tmp_path: Path) -> None:
    from corrode.translate import Translator

    translator = Translator.load(tiny_gan(tmp_path / "gan.safetensors"), device="cpu", precision="fp32")
    image, mask = photo(150, 120, seed=1), ellipse((120, 150))
    whole, tiled = (
        Renderer(translator, gan_size="native", tile=tile).render([image], ["severe"], [mask])[0]
        for tile in (0, 64)
    )
    for rendering in (whole, tiled):
        assert np.array_equal(rendering.outputs["severe"][~mask], image[~mask])
    difference = np.abs(whole.outputs["severe"].astype(int) - tiled.outputs["severe"].astype(int))
    assert difference.max() <= 8


def test_gan_size_option_is_validated() -> None:
    assert RenderConfig(gan_size="NATIVE").gan_size == "native"
    assert RenderConfig(gan_size="512").gan_size == 512
    for bad in ("huge", "30", "8"):
        with pytest.raises(ConfigError, match="--gan-size"):
            RenderConfig(gan_size=bad)
    with pytest.raises(ConfigError, match="onnx"):
        RenderConfig(gan_size=256, engine="onnx")
    with pytest.raises(ConfigError, match="tile"):
        RenderConfig(tile=50)


# --- issue 15: folders without images, two renders in one folder, SIGTERM and kill -9 -------------


def test_cli_folder_without_images_is_one_line_and_others_render(
    tmp_path: Path, fake_loader: list[RenderConfig]
) -> None:
    (source,) = _photos(tmp_path / "in", 1, masks=tmp_path / "masks")
    (tmp_path / "empty").mkdir()
    (tmp_path / "folder.jpg").mkdir()
    args = ["render", str(tmp_path / "empty"), str(source), str(tmp_path / "folder.jpg")]
    result = runner.invoke(app, [*args, "-o", str(tmp_path / "out"), "--mask", str(tmp_path / "masks")])
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 2, result.stderr
    assert any("empty: folder holds no image files" in line for line in lines)
    assert any("folder.jpg: is a directory, not an image file" in line for line in lines)
    assert (tmp_path / "out" / "car0_severe.png").is_file()
    alone = runner.invoke(app, ["render", str(tmp_path / "empty"), "--mask", str(tmp_path / "masks")])
    assert alone.exit_code == 1 and "no image" in alone.stderr


def _batch(folder: Path, count: int, masks: Path) -> None:
    folder.mkdir(parents=True)
    masks.mkdir(parents=True)
    for index in range(count):
        save(folder / f"p{index:02d}.png", photo(160, 120, seed=index))
        Image.fromarray(ellipse((120, 160)).astype(np.uint8) * 255).save(masks / f"p{index:02d}.png")


def _render_process(tmp_path: Path, gan: Path, *extra: str) -> subprocess.Popen[bytes]:
    import os
    import sys

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    command = [sys.executable, "-m", "corrode", "render", str(tmp_path / "in"), "--gan", str(gan)]
    command += ["--mask", str(tmp_path / "masks"), "-o", str(tmp_path / "out"), "--device", "cpu"]
    command += ["--precision", "fp32", "--gan-size", "native", *extra]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_for_outputs(folder: Path, count: int, process: subprocess.Popen[bytes]) -> None:
    import time

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if folder.is_dir() and len(list(folder.glob("p*_severe.png"))) >= count:
            return
        time.sleep(0.02)
    raise AssertionError(f"the render ended or stalled before {count} outputs: {process.communicate()}")


def _complete(folder: Path) -> list[Path]:
    outputs = sorted(folder.glob("p*_severe.png"))
    for path in outputs:
        with Image.open(path) as image:
            image.load()  # a truncated file fails here
            assert image.size == (160, 120)
    assert not [p.name for p in folder.iterdir() if p.name.startswith(".")], "temporary files left"
    return outputs


@pytest.mark.slow
def test_two_renders_into_one_folder_leave_only_complete_files(tmp_path: Path) -> None:
    _batch(tmp_path / "in", 12, tmp_path / "masks")
    gan = tiny_gan(tmp_path / "gan.safetensors")
    first, second = (_render_process(tmp_path, gan, "--overwrite") for _ in range(2))
    for process in (first, second):
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr.decode()
    assert len(_complete(tmp_path / "out")) == 12


@pytest.mark.slow
@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_killed_batch_reruns_only_what_is_missing(tmp_path: Path, how: str) -> None:
    import signal

    _batch(tmp_path / "in", 40, tmp_path / "masks")
    gan = tiny_gan(tmp_path / "gan.safetensors")
    process = _render_process(tmp_path, gan)
    _wait_for_outputs(tmp_path / "out", 3, process)
    process.send_signal(getattr(signal, how))
    _, stderr = process.communicate(timeout=60)
    if process.returncode not in (0, -9):  # 0: it finished first on a fast machine
        assert process.returncode == 143 and "terminated" in stderr.decode(), stderr.decode()
    if how == "SIGTERM":
        done = _complete(tmp_path / "out")  # SIGTERM: its own temporary file is gone at once
    else:
        done = [p for p in (tmp_path / "out").glob("p*_severe.png")]
    stamps = {p: p.stat().st_mtime_ns for p in done}
    rerun = _render_process(tmp_path, gan, "--json")
    stdout, stderr = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, stderr.decode()
    records = [json.loads(line) for line in stdout.decode().splitlines()]
    written = {Path(r["output"]).name for r in records if r["status"] == "written"}
    # kill -9 may leave a complete file that the rename never reached: it is not among `done`.
    assert written == {f"p{i:02d}_severe.png" for i in range(40)} - {p.name for p in done}
    assert len(_complete(tmp_path / "out")) == 40
    assert all(p.stat().st_mtime_ns == stamp for p, stamp in stamps.items())


def test_leftover_temporary_files_of_dead_writers_are_swept(tmp_path: Path) -> None:
    import fcntl
    import os

    from corrode.render.files import claimed_temp, leftovers, sweep_leftovers

    target = tmp_path / "out" / "car_severe.png"
    target.parent.mkdir()
    dead = target.parent / ".car_severe.abc123.part.png"
    dead.write_bytes(b"half an image")  # what a writer killed by kill -9 leaves: no one holds its lock
    live = target.parent / ".car_severe.def456.part.png"
    live.write_bytes(b"")
    holder = os.open(live, os.O_RDONLY)
    fcntl.flock(holder, fcntl.LOCK_EX)  # another render still writing this one
    try:
        assert sweep_leftovers([target]) == [dead]
        assert leftovers(target) == [live]
    finally:
        os.close(holder)
    with claimed_temp(target) as handle:
        handle.write(b"complete")
        assert len(leftovers(target)) == 2  # ours, and the now-unlocked one
        assert sweep_leftovers([target]) == [live]  # ours is locked: kept
    assert target.read_bytes() == b"complete" and leftovers(target) == []

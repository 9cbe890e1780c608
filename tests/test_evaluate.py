"""corrode evaluate: per-level measures on a tiny synth-like set with stand-in translators, and the CLI."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from corrode import levels
from corrode.classification import Classifier
from corrode.cli import app
from corrode.evaluate import EvaluateConfig, evaluate, spread
from corrode.models.classifier import ClassifierConfig, LevelClassifier

RUST = torch.tensor([178, 88, 36]).float().div(255).view(1, 3, 1, 1)
BLUE = (30, 80, 200)
SIZE = 32


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class SpeckleTranslator:
    """Adds rust over level/4 of the car (a fixed pattern); to_clean paints it back blue-ish."""

    image_size = SIZE
    levels = levels.RUSTY_NAMES

    def __init__(self, shift_paint: bool = False) -> None:
        self.pattern = torch.rand(1, 1, SIZE, SIZE, generator=torch.Generator().manual_seed(5))
        self.shift_paint = shift_paint

    def to_level(self, images: torch.Tensor, level: str) -> torch.Tensor:
        car = images.amax(dim=1, keepdim=True) > 0
        rust = car & (self.pattern < levels.get(level).index / 4)
        out = images.clone()
        if self.shift_paint:  # the paper's failure: bright paint turned into a common grey
            out = torch.where(car, torch.full_like(out, 0.45), out)
        return torch.where(rust, RUST.expand_as(out), out)

    def to_clean(self, images: torch.Tensor, level: str) -> torch.Tensor:
        rust = (images - RUST).abs().amax(dim=1, keepdim=True) < 1e-3
        blue = torch.tensor(BLUE).float().div(255).view(1, 3, 1, 1)
        return torch.where(rust, blue.expand_as(images), images)


def make_synth(root: Path, per_level: int = 4) -> Path:
    """A synth-like folder: levels/, levels_masks/ (background kept, as synth writes) and manifest.csv."""
    rng = np.random.default_rng(0)
    rows = []
    for level in levels.LEVELS:
        for folder in ("levels", "levels_masks"):
            (root / folder / level.name).mkdir(parents=True, exist_ok=True)
        for index in range(per_level):
            image = np.full((48, 48, 3), (90, 140, 90), np.uint8)  # green background
            mask = np.zeros((48, 48), bool)
            mask[10:38, 6:42] = True
            image[mask] = BLUE
            # Rust in 8 px patches, as synth draws it: single-pixel speckle would blur away when resized.
            rust = mask & np.kron(rng.random((6, 6)) < level.index / 4, np.ones((8, 8), bool))
            image[rust] = (178, 88, 36)
            name = f"car{index}.png"
            Image.fromarray(image).save(root / "levels" / level.name / name)
            Image.fromarray(mask.astype(np.uint8) * 255).save(root / "levels_masks" / level.name / name)
            rows.append(
                {
                    "file": f"levels/{level.name}/{name}",
                    "mask": f"levels_masks/{level.name}/{name}",
                    "set": "levels",
                    "true_level": level.name,
                    "label": level.name,
                    "rust_fraction": f"{rust.sum() / mask.sum():.4f}",
                }
            )
    with open(root / "manifest.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return root


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_synth(tmp_path_factory.mktemp("synth"))


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    torch.manual_seed(0)
    return Classifier(LevelClassifier(ClassifierConfig(width=0.25, size=SIZE)), "cpu")


def test_evaluate_reports_every_level(data, classifier, tmp_path):
    cfg = EvaluateConfig(data=data, out=tmp_path / "report", render_checks=2, device="cpu")
    lines: list[str] = []
    report = evaluate(cfg, translator=SpeckleTranslator(), classifier=classifier, log=lines.append)
    assert list(report.levels) == list(levels.RUSTY_NAMES)
    assert "classifier penultimate layer" in report.features
    for name, values in report.levels.items():
        assert 0 <= values["accuracy"] <= 1 and 0 <= values["mean_level"] <= 3
        assert np.isfinite(values["fid"]) and values["kid"] is not None
        # Only rust was added, the paint kept: no colour shift, nothing changed outside the car.
        assert values["colour_shift"] == pytest.approx(0.0, abs=0.5)
        assert values["changed_outside_car"] == 0 and values["render_checked"] == 2
        low, high = values["coverage"]["true_band"]
        assert low <= values["coverage"]["real_estimate_mean"] + 0.05 and low <= high
        # to_clean repaints rust pure blue: exact except at the car's resized (darker) edge
        assert values["cycle_clean"]["l1"] < 0.01 and values["cycle_clean"]["psnr"] > 25, name
    coverage = [report.levels[name]["coverage"]["generated_mean"] for name in levels.RUSTY_NAMES]
    assert coverage == sorted(coverage) and coverage[-1] > 0.5
    assert report.sources["held_out"] is False and any("may have trained" in n for n in report.notes)
    saved = json.loads((tmp_path / "report" / "report.json").read_text())
    assert saved["features"] == report.features and set(saved["levels"]) == set(levels.RUSTY_NAMES)
    assert "| severe |" in (tmp_path / "report" / "report.md").read_text()
    assert Image.open(tmp_path / "report" / "report.png").size[0] > 400
    assert any(line.startswith("severe:") for line in lines)


def test_colour_shift_catches_repainted_cars(data, classifier):
    cfg = EvaluateConfig(data=data, render_checks=0, device="cpu")
    report = evaluate(cfg, translator=SpeckleTranslator(shift_paint=True), classifier=classifier)
    assert all(values["colour_shift"] > 10 for values in report.levels.values())
    assert report.folder is None  # no --out and no GAN run folder: nothing written


def test_held_out_sources_and_no_classifier(data, tmp_path, monkeypatch):
    monkeypatch.setenv("CORRODE_HOME", str(tmp_path / "home"))
    held_out = tmp_path / "held_out"
    held_out.mkdir()
    for index in range(3):
        (held_out / f"car{index}.png").write_bytes(
            (data / "levels" / "none" / f"car{index}.png").read_bytes()
        )
    (held_out / "broken.png").write_bytes(b"junk")
    cfg = EvaluateConfig(
        data=data, sources=held_out, masks=data / "levels_masks", render_checks=0, device="cpu"
    )
    lines: list[str] = []
    report = evaluate(cfg, translator=SpeckleTranslator(), log=lines.append)
    assert report.sources == {"folder": str(held_out), "count": 3, "held_out": True}
    assert "accuracy" not in report.levels["mild"] and report.features.startswith("none")
    assert any("broken.png" in line for line in lines)


def test_spread_picks_evenly():
    assert spread(list(range(10)), 3) == [0, 4, 9] or spread(list(range(10)), 3) == [0, 5, 9]
    assert spread([1, 2], 5) == [1, 2]


def test_evaluate_needs_data_and_clean_cars(tmp_path, classifier):
    from corrode.errors import UsageError

    with pytest.raises(UsageError):
        evaluate(EvaluateConfig(), translator=SpeckleTranslator(), classifier=classifier)
    (tmp_path / "mild").mkdir()
    with pytest.raises(UsageError, match="no clean"):
        evaluate(EvaluateConfig(data=tmp_path), translator=SpeckleTranslator(), classifier=classifier)


def test_evaluate_cli(data, tmp_path):
    translate = pytest.importorskip("corrode.translate")
    from corrode.checkpoint import save_model
    from corrode.config import to_dict
    from corrode.models.cyclegan import CycleGanConfig, GeneratorSet

    torch.manual_seed(0)
    gan_config = CycleGanConfig(base_channels=4, residual_blocks=1, discriminator_channels=4)
    gan_run = tmp_path / "gan"
    gan_run.mkdir()
    save_model(
        gan_run / "model.safetensors",
        GeneratorSet(gan_config),
        kind=translate.KIND,
        config={"model": to_dict(gan_config), "image_size": SIZE},
    )
    classifier_file = tmp_path / "classifier.safetensors"
    save_model(
        classifier_file,
        LevelClassifier(ClassifierConfig(width=0.25, size=SIZE)),
        kind="classifier",
        config=to_dict(ClassifierConfig(width=0.25, size=SIZE)),
    )
    arguments = ["evaluate", "--gan", str(gan_run), "--data", str(data), "--classifier", str(classifier_file)]
    result = CliRunner().invoke(app, [*arguments, "--render-checks", "1", "--device", "cpu", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert (
        set(report["levels"]) == set(levels.RUSTY_NAMES)
        and report["levels"]["mild"]["changed_outside_car"] == 0
    )
    assert (gan_run / "report.json").is_file() and (gan_run / "report.png").is_file()
    result = CliRunner().invoke(app, ["evaluate", "--gan", str(tmp_path / "missing"), "--data", str(data)])
    assert result.exit_code == 2 and "missing" in result.stderr


def test_cache_reads_and_embeds_real_cars_once(data, classifier, monkeypatch):
    from corrode.evaluate import EvaluationCache, measures, run

    reads: list[int] = []
    original = run.read_cars

    def counting(paths, *args, **kwargs):
        reads.append(len(paths))
        return original(paths, *args, **kwargs)

    monkeypatch.setattr(run, "read_cars", counting)
    cache = EvaluationCache()
    cfg = EvaluateConfig(data=data, render_checks=0, device="cpu")
    first = evaluate(cfg, translator=SpeckleTranslator(), classifier=classifier, cache=cache)
    assert len(reads) == 1 + len(levels.RUSTY_NAMES)  # the clean cars, then each level's real cars
    assert {key.level for key in cache.real} == set(levels.RUSTY_NAMES)
    second = evaluate(cfg, translator=SpeckleTranslator(), classifier=classifier, cache=cache)
    assert len(reads) == 2 + len(levels.RUSTY_NAMES)  # only the clean cars again
    assert second.levels["severe"]["fid"] == pytest.approx(first.levels["severe"]["fid"])
    # A plain dict is taken as the cache's store, as earlier callers passed it.
    store: dict = {}
    evaluate(cfg, translator=SpeckleTranslator(), classifier=classifier, cache=store)
    assert all(isinstance(value, measures.RealCars) for value in store.values()) and len(store) == 3


def test_measure_groups_have_known_answers():
    from corrode.evaluate import measures

    images = np.zeros((2, 8, 8, 3))
    masks = np.ones((2, 8, 8), bool)
    same = measures.cycle_error(images, images, masks)
    assert same["l1"] == 0 and (same["psnr"] == float("inf") or same["psnr"] > 90)
    half = measures.cycle_error(images, images + 0.5, masks)
    assert half["l1"] == pytest.approx(0.5) and half["psnr"] == pytest.approx(6.02, abs=0.01)
    assert measures.colour_kept(images + 0.4, images + 0.4, masks) == pytest.approx(0.0)

"""Every command that reads images, run on the same bad-input corpus (tests/conftest.py).

The contract, for each: every bad file named once with its reason, exit code 1, every good file
processed, nothing partial written, no input touched.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import Corpus, tree_digest
from typer.testing import CliRunner

import corrode.label.server as server_module
from corrode import levels
from corrode.batch import output_path
from corrode.cli import app
from corrode.images import read_image
from corrode.label.db import LabelDB

runner = CliRunner()


pytestmark = pytest.mark.usefixtures("one_thread")


def assert_named_once(stderr: str, bad: dict[str, str]) -> None:
    """Each bad name appears on exactly one stderr line, and that line gives its reason."""
    lines = stderr.splitlines()
    for name, reason in bad.items():
        hits = [line for line in lines if f"{name}:" in line]
        assert len(hits) == 1, f"{name}: named {len(hits)} times in\n{stderr}"
        assert reason.lower() in hits[0].lower(), f"{name}: reason {reason!r} not in {hits[0]!r}"


def assert_good_not_blamed(stderr: str, good: dict[str, tuple[int, int]]) -> None:
    for name in good:
        assert f"{name}:" not in stderr, f"good file {name} reported as bad:\n{stderr}"


def assert_nothing_partial(folder: Path) -> None:
    leftovers = [p for p in folder.rglob("*") if ".part" in p.name or p.name.endswith((".tmp", ".temp"))]
    assert not leftovers, leftovers


def test_corpus_has_every_kind(corpus: Corpus) -> None:
    names = {p.name for p in corpus.folder.iterdir()}
    assert set(corpus.good) | set(corpus.bad) | {"again"} == names
    assert os.path.islink(corpus.folder / "loop.jpg") and (corpus.folder / "folder.jpg").is_dir()
    for path in corpus.good_paths:
        width, height = corpus.good[path.name]
        assert read_image(path).shape == (height, width, 3), path.name


# --- label -----------------------------------------------------------------------------------------


def test_label_serve_names_each_bad_file_and_serves_every_good_one(
    corpus: Corpus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from starlette.testclient import TestClient

    served: dict[str, object] = {}

    class Server:
        """Stands in for uvicorn: lists and fetches every image through the real app, then stops."""

        def __init__(self, app_, sock) -> None:
            self.app = app_

        def run(self, sockets) -> None:
            client = TestClient(self.app, base_url="http://127.0.0.1")
            state = client.get("/api/state").json()
            served["items"] = state["items"]
            served["images"] = {item["name"]: client.get(f"/image/{item['id']}") for item in state["items"]}

    monkeypatch.setattr(server_module, "make_server", Server)
    before = tree_digest(corpus.folder)
    db = tmp_path / "labels.sqlite"
    result = runner.invoke(
        app, ["label", str(corpus.folder), "--db", str(db), "--annotator", "ana", "--no-browser"]
    )
    # A server is not a batch: it starts (and ends as its user stops it) whatever the bad files were.
    assert result.exit_code == 0, result.output
    assert_named_once(result.stderr, corpus.bad)
    assert_good_not_blamed(result.stderr, corpus.good)
    # Registering reads headers only (fast on thousands of photos): a JPEG cut short in its pixel
    # data is listed, and named the first time it is served.
    late = "truncated.jpg"
    assert {item["name"] for item in served["items"]} == {*corpus.good, late}
    for name, response in served["images"].items():
        if name == late:
            assert response.status_code >= 400
        else:
            assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    assert tree_digest(corpus.folder) == before
    with LabelDB(db) as database:
        bad = {image.path.name for image in database.images() if image.bad}
    assert bad == set(corpus.bad)


def test_label_serve_starts_past_a_truncated_png(tmp_path: Path, make_corpus, monkeypatch) -> None:
    """The issue's case: a truncated PNG whose EXIF lookup reads the pixel data."""
    folder = tmp_path / "photos"
    make_corpus(folder, bad=False)
    from PIL import Image

    big = folder / "big.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (256, 256, 3), np.uint8)).save(big)
    (folder / "cut.png").write_bytes(big.read_bytes()[:5000])
    started = []

    def serve(config, *, report, announce):
        with LabelDB(config.db) as db:
            announce("http://127.0.0.1:9/", server_module.prepare(config, db, report=report))
            started.append(True)

    monkeypatch.setattr(server_module, "serve", serve)
    db = tmp_path / "labels.sqlite"
    result = runner.invoke(app, ["label", str(folder), "--db", str(db), "-a", "ana", "--no-browser"])
    assert result.exit_code == 0, result.output
    assert started and (result.exception is None or isinstance(result.exception, SystemExit))
    assert_named_once(result.stderr, {"cut.png": "truncated"})


def test_label_import_names_each_bad_file(make_corpus, tmp_path: Path) -> None:
    root = tmp_path / "levels"
    corpus = make_corpus(root / "mild")
    make_corpus(root / "severe", bad=False)
    before = tree_digest(root)
    db = tmp_path / "labels.sqlite"
    result = runner.invoke(app, ["label", "import", str(root), "--db", str(db), "-a", "ana"])
    assert result.exit_code == 1
    assert_named_once(result.stderr, corpus.bad)
    assert_good_not_blamed(result.stderr, corpus.good)
    with LabelDB(db) as database:
        labels = database.labels_of("ana")
        names = {image.id: image.path for image in database.images()}
    mild = sorted(names[i].name for i, label in labels.items() if label == "mild")
    assert mild == sorted(corpus.good)
    assert sum(1 for label in labels.values() if label == "severe") == len(corpus.good)
    assert tree_digest(root) == before


# --- augment ---------------------------------------------------------------------------------------


def test_augment_names_each_bad_pair(corpus: Corpus, tmp_path: Path) -> None:
    source = tmp_path / "pairs"
    images = source / "images"
    shutil.copytree(corpus.folder, images, symlinks=True)
    corpus = Corpus(images, corpus.good, corpus.bad)
    corpus.write_masks(source / "masks")
    before = tree_digest(source)
    out = tmp_path / "out"
    result = runner.invoke(app, ["augment", str(source), str(out), "--size", "32", "--device", "cpu"])
    assert result.exit_code == 1, result.output
    assert_named_once(result.stderr, {**corpus.bad, **corpus.extra_bad})
    good = corpus.with_masks_good()
    assert_good_not_blamed(result.stderr, good)
    written = {p.name for p in (out / "images").iterdir()}
    expected = {f"{Path(n).stem}_{view}.png" for n in good for view in ("left", "centre", "right")}
    assert written == expected
    assert written == {p.name for p in (out / "masks").iterdir()}
    assert_nothing_partial(out)
    assert tree_digest(source) == before


def _stderr_names(stderr: str) -> list[str]:
    return re.findall(r"([^/\s][^/]*?):", stderr)


def _json_lines(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


LEVEL_NAMES = levels.NAMES


# --- a level data set with the corpus mixed in, and tiny models -------------------------------------

MIXED_LEVELS = ("none", "mild")


@pytest.fixture(scope="module")
def level_data(tmp_path_factory) -> tuple[Path, dict[str, Corpus]]:
    """`ROOT/levels/<level>/` (3 synth cars each, 32 px) + `ROOT/levels_masks/`, with the corpus mixed
    into none/ and mild/ (a mask for every entry, one the wrong size). No synth manifest."""
    from conftest import write_corpus

    from corrode.synth import SynthConfig, synth

    base = tmp_path_factory.mktemp("levels")
    synth(SynthConfig(base / "synth", none=3, mild=3, moderate=3, severe=3, carvana_cars=2,
                      carvana_views=2, size=32, workers=0))  # fmt: skip
    root = base / "data"
    shutil.copytree(base / "synth" / "levels", root / "levels")
    shutil.copytree(base / "synth" / "levels_masks", root / "levels_masks")
    shutil.copytree(base / "synth" / "carvana", root / "carvana")
    mixed = {}
    for level in MIXED_LEVELS:
        corpus = write_corpus(root / "levels" / level)
        corpus.write_masks(root / "levels_masks" / level)
        mixed[level] = corpus
    train = write_corpus(root / "carvana" / "train")
    train.write_masks(root / "carvana" / "train_masks", suffix="_mask.png")
    mixed["carvana"] = train
    return root, mixed


def _bad_lines(mixed: dict[str, Corpus], names: tuple[str, ...], *, masks: bool) -> dict[str, str]:
    """Expected `<level>/<name>` -> reason, for the corpus copies under `names`."""
    expected = {}
    for level in names:
        corpus = mixed[level]
        bad = {**corpus.bad, **(corpus.extra_bad if masks else {})}
        expected.update({f"{level}/{name}": reason for name, reason in bad.items()})
    return expected


def _named_once_in_levels(stderr: str, expected: dict[str, str]) -> None:
    lines = stderr.splitlines()
    for key, reason in expected.items():
        level, name = key.split("/", 1)
        hits = [line for line in lines if f"{level}/{name}:" in line]
        assert len(hits) == 1, f"{key}: named {len(hits)} times in\n{stderr}"
        assert reason.lower() in hits[0].lower(), (key, hits[0])


def tiny_classifier(path: Path, size: int = 32) -> Path:
    from corrode.checkpoint import save_model
    from corrode.config import to_dict
    from corrode.models.classifier import ClassifierConfig, LevelClassifier

    torch.manual_seed(0)
    config = ClassifierConfig(width=0.25, size=size)
    return save_model(path, LevelClassifier(config), kind="classifier", config=to_dict(config))


def _without_loop(corpus: Corpus, folder: Path) -> Corpus:
    shutil.copytree(corpus.folder, folder, symlinks=True)
    (folder / "loop.jpg").unlink()
    return Corpus(folder, corpus.good, {k: v for k, v in corpus.bad.items() if k != "loop.jpg"})


# --- render, classify ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "loop",
    [
        True,
        False,
    ],
    ids=["full-corpus", "without-link-loop"],
)
def test_render_names_each_bad_file(corpus: Corpus, tmp_path: Path, loop: bool) -> None:
    from test_render import tiny_gan

    if not loop:
        corpus = _without_loop(corpus, tmp_path / "no-loop")
    masks = corpus.write_masks(tmp_path / "masks")
    gan = tiny_gan(tmp_path / "gan.safetensors")
    before = tree_digest(corpus.folder)
    out = tmp_path / "out"
    args = ["render", str(corpus.folder), "--mask", str(masks), "--gan", str(gan), "-o", str(out)]
    result = runner.invoke(app, [*args, "--level", "mild", "--device", "cpu", "--json"])
    assert result.exit_code == 1, result.output
    assert_named_once(result.stderr, {**corpus.bad, **corpus.extra_bad})
    good = corpus.with_masks_good()
    assert_good_not_blamed(result.stderr, good)
    written = sorted(p.name for p in out.iterdir())
    assert len(written) == len(good)
    for name in good:
        output = output_path(corpus.folder / name, "mild", out_dir=out)
        width, height = good[name]
        assert read_image(output).shape == (height, width, 3), name
    records = _json_lines(result.stdout)
    assert sum(r["status"] == "written" for r in records) == len(good)
    assert_nothing_partial(out)
    assert tree_digest(corpus.folder) == before


def test_render_batch_names_an_empty_folder(tmp_path: Path, make_corpus) -> None:
    from test_render import tiny_gan

    photos = make_corpus(tmp_path / "photos", bad=False)
    (tmp_path / "empty").mkdir()
    (tmp_path / "cars.jpg").mkdir()
    masks = photos.write_masks(tmp_path / "masks")
    gan = tiny_gan(tmp_path / "gan.safetensors")
    args = ["render", str(photos.folder / "grey.jpg"), str(tmp_path / "empty"), str(tmp_path / "cars.jpg")]
    result = runner.invoke(
        app, [*args, "--mask", str(masks), "--gan", str(gan), "-o", str(tmp_path / "out"), "--device", "cpu"]
    )
    assert result.exit_code == 1, result.output
    assert_named_once(result.stderr, {"empty": "holds no image files", "cars.jpg": "directory"})
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["grey_severe.jpg"]  # the default level


def test_classify_names_each_bad_file(corpus: Corpus, tmp_path: Path) -> None:
    model = tiny_classifier(tmp_path / "classifier.safetensors")
    before = tree_digest(corpus.folder)
    result = runner.invoke(app, ["classify", str(corpus.folder), "--model", str(model), "--device", "cpu"])
    assert result.exit_code == 1, result.output
    assert_named_once(result.stderr, corpus.bad)
    assert_good_not_blamed(result.stderr, corpus.good)
    rows = [line.split("\t") for line in result.stdout.splitlines() if line.strip()]
    assert sorted(Path(row[0]).name for row in rows) == sorted(corpus.good)
    assert all(row[1] in LEVEL_NAMES for row in rows)
    assert tree_digest(corpus.folder) == before


# --- training and data commands: bad files mixed into a data set --------------------------------------


def _skipped_names(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(("skipped", "error", "  "))]


@pytest.mark.slow
def test_train_classifier_skips_each_bad_file_and_trains(level_data, tmp_path: Path) -> None:
    root, mixed = level_data
    before = tree_digest(root)
    run = tmp_path / "run"
    args = ["train-classifier", str(root / "levels"), "--out", str(run), "--size", "32", "--width", "0.25"]
    result = runner.invoke(app, [*args, "--epochs", "1", "--encoder-weights", "none", "--device", "cpu"])
    # A trainer skips what it cannot read, one line each, trains on the rest, and exits 1 (issue 15).
    assert result.exit_code == 1, result.output
    _named_once_in_levels(result.stderr, _bad_lines(mixed, MIXED_LEVELS, masks=True))
    assert (run / "model.safetensors").is_file() or (run / "best.safetensors").is_file()
    assert_nothing_partial(run)
    assert tree_digest(root) == before


@pytest.mark.slow
def test_train_seg_skips_each_bad_pair_and_trains(level_data, tmp_path: Path) -> None:
    root, mixed = level_data
    before = tree_digest(root)
    run = tmp_path / "run"
    args = ["train-seg", str(root / "carvana"), "--out", str(run), "--epochs", "1", "--size", "32"]
    args += ["--width", "0.25", "--decoder-channels", "8,8,8,8", "--batch-size", "4", "--val-fraction", "0.2"]
    result = runner.invoke(
        app, [*args, "--device", "cpu", "--precision", "fp32", "--encoder-weights", "none"]
    )
    corpus = mixed["carvana"]
    expected = {f"train/{n}": r for n, r in corpus.bad.items()}
    expected["train_masks/wrong mask_mask.png"] = "mask is 32x32"
    assert tree_digest(root) == before
    assert result.exit_code == 1, result.output
    _named_once_in_levels(result.stderr, expected)
    assert (run / "model.safetensors").is_file()


def test_optimize_masks_names_each_bad_file(level_data, tmp_path: Path) -> None:
    root, mixed = level_data
    before = tree_digest(root)
    out = tmp_path / "out"
    args = ["optimize-masks", str(root / "levels"), "--out", str(out), "--masks", str(root / "levels_masks")]
    result = runner.invoke(app, args)
    assert tree_digest(root) == before
    assert result.exit_code == 1, result.output
    _named_once_in_levels(result.stderr, _bad_lines(mixed, MIXED_LEVELS, masks=True))
    good = sum(len(c.with_masks_good()) for level, c in mixed.items() if level in MIXED_LEVELS)
    assert len(list((out / "masks").rglob("*.png"))) == good + 3 * len(LEVEL_NAMES)
    assert_nothing_partial(out)


@pytest.mark.slow
def test_train_gan_skips_each_bad_file_and_trains(level_data, tmp_path: Path) -> None:
    root, mixed = level_data
    before = tree_digest(root)
    run = tmp_path / "run"
    args = ["train-gan", str(root / "levels"), "--out", str(run), "--size", "32", "--epochs", "1"]
    args += ["--decay-epochs", "0", "--base-channels", "4", "--residual-blocks", "1"]
    result = runner.invoke(app, [*args, "--discriminator-channels", "4", "--samples", "1", "--device", "cpu"])
    assert tree_digest(root) == before
    # The trainers' one policy: each bad image named once, training on the rest, exit 1.
    _named_once_in_levels(result.stderr, _bad_lines(mixed, MIXED_LEVELS, masks=True))
    assert result.exit_code == 1, result.output
    assert (run / "model.safetensors").is_file()
    assert_nothing_partial(run)


@pytest.mark.slow
def test_evaluate_names_each_bad_file(level_data, tmp_path: Path) -> None:
    from test_render import tiny_gan

    root, mixed = level_data
    before = tree_digest(root)
    gan = tiny_gan(tmp_path / "gan.safetensors")
    classifier = tiny_classifier(tmp_path / "classifier.safetensors")
    args = ["evaluate", "--gan", str(gan), "--data", str(root / "levels"), "--classifier", str(classifier)]
    result = runner.invoke(
        app, [*args, "--render-checks", "1", "--device", "cpu", "--out", str(tmp_path / "ev")]
    )
    assert tree_digest(root) == before
    _named_once_in_levels(result.stderr, _bad_lines(mixed, MIXED_LEVELS, masks=True))
    assert result.exit_code == 1, result.output


# --- issue 15's findings in other owners' commands ---------------------------------------------------


def test_train_gan_short_run_needs_no_decay_flag(level_data, tmp_path: Path) -> None:
    root, _ = level_data
    run = tmp_path / "run"
    args = ["train-gan", str(root / "levels"), "--out", str(run), "--epochs", "6", "--size", "32"]
    args += ["--base-channels", "4", "--residual-blocks", "1", "--discriminator-channels", "4"]
    args += ["--batch-size", "4", "--samples", "1", "--checkpoint-every", "0", "--device", "cpu"]
    result = runner.invoke(app, args)
    assert "decay_epochs" not in result.output, result.output
    assert result.exit_code == 1, result.output  # the data set's bad files were skipped
    assert (run / "model.safetensors").is_file()


@pytest.mark.slow
def test_train_classifier_small_size_is_refused_or_trains(tmp_path: Path) -> None:
    from corrode.synth import SynthConfig, synth

    synth(
        SynthConfig(tmp_path / "s", none=4, mild=4, moderate=4, severe=4, carvana_cars=0, size=32, workers=0)
    )
    args = [
        "train-classifier",
        str(tmp_path / "s" / "levels"),
        "--out",
        str(tmp_path / "run"),
        "--size",
        "32",
    ]
    args += ["--epochs", "1", "--width", "0.25", "--batch-size", "1", "--encoder-weights", "none"]
    result = runner.invoke(app, [*args, "--device", "cpu"])
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code in (0, 2), result.output

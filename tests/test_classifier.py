"""The level classifier: softmax head, training on a tiny set, resume, inference API and the CLI."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from corrode import levels
from corrode.cli import app
from corrode.errors import ConfigError, UsageError
from corrode.models.classifier import ClassifierConfig, LevelClassifier, level_loss, level_probabilities
from corrode.train_classifier import (
    TrainClassifierConfig,
    epoch_order,
    level_weights,
    split_by_level,
    train_classifier,
)

RUST = (178, 88, 36)


@pytest.fixture(autouse=True)
def one_thread():
    # The test machine is shared: one thread per test process avoids oversubscribing the cores.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def draw_car(rng: np.random.Generator, level: int, size: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """A painted box on a grey background with rust speckle over level/4 of its pixels, and its mask."""
    image = np.full((size, size, 3), 150, np.uint8)
    mask = np.zeros((size, size), bool)
    top, left = rng.integers(2, 8, 2)
    mask[top : top + size - 12, left : left + size - 10] = True
    image[mask] = rng.integers(40, 220, 3)
    speckle = mask & (rng.random((size, size)) < level / 4)
    image[speckle] = RUST
    return image, mask


def make_levels(root: Path, per_level: tuple[int, ...] = (6, 4, 4, 3), seed: int = 0) -> Path:
    """DATA/levels/<level>/*.png + DATA/levels_masks/<level>/*.png (unbalanced, like real data)."""
    rng = np.random.default_rng(seed)
    for level, count in zip(levels.LEVELS, per_level, strict=True):
        for folder in (root / "levels" / level.name, root / "levels_masks" / level.name):
            folder.mkdir(parents=True, exist_ok=True)
        for index in range(count):
            image, mask = draw_car(rng, level.index)
            Image.fromarray(image).save(root / "levels" / level.name / f"car{index}.png")
            Image.fromarray(mask.astype(np.uint8) * 255).save(
                root / "levels_masks" / level.name / f"car{index}.png"
            )
    return root


def tiny_config(data: Path, out: Path, **overrides) -> TrainClassifierConfig:
    values = dict(
        data=data,
        out=out,
        size=32,
        width=0.25,
        epochs=2,
        batch_size=8,
        encoder_weights="none",
        device="cpu",
        learning_rate=3e-3,
        warmup_epochs=0.0,
    )
    values.update(overrides)
    return TrainClassifierConfig(**values)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path, list[str]]:
    torch.set_num_threads(1)
    root = make_levels(tmp_path_factory.mktemp("data"))
    (root / "levels" / "mild" / "broken.png").write_bytes(b"not a png")
    lines: list[str] = []
    run = train_classifier(tiny_config(root, root / "run"), log=lines.append)
    return root, run, lines


# --- the network ---------------------------------------------------------------------------------


def test_head_gives_probabilities():
    torch.manual_seed(0)
    model = LevelClassifier(ClassifierConfig(width=0.25, size=32)).eval()
    logits = model(torch.rand(3, 3, 32, 32))
    assert logits.shape == (3, 4)
    probabilities = level_probabilities(logits)
    assert probabilities.shape == (3, 4)
    assert torch.all(probabilities >= 0)
    torch.testing.assert_close(probabilities.sum(1), torch.ones(3))
    assert model.features(torch.rand(2, 3, 32, 32)).shape == (2, model.num_features)


def test_level_loss_known_answers():
    target = torch.tensor([0])
    uniform = torch.zeros(1, 4)
    assert float(level_loss(uniform, target)) == pytest.approx(np.log(4))
    confident = torch.tensor([[20.0, 0.0, 0.0, 0.0]])
    assert float(level_loss(confident, target)) < 1e-6
    # Smoothing keeps a confident right answer from costing nothing: the target is 0.925, 0.025 x 3.
    assert float(level_loss(confident, target, label_smoothing=0.1)) == pytest.approx(0.075 * 20, rel=1e-3)
    weighted = level_loss(
        torch.tensor([[-9.0, 0.0, 0.0, 9.0]]).repeat(2, 1),
        torch.tensor([0, 3]),
        sample_weights=torch.tensor([0.0, 1.0]),
    )
    assert weighted < 0.01


def test_bad_model_config():
    with pytest.raises(ConfigError):
        ClassifierConfig(size=40)
    with pytest.raises(ConfigError):
        TrainClassifierConfig(balance="oversample")


# --- data plumbing -------------------------------------------------------------------------------


def test_split_is_stratified_and_seeded():
    labels = np.array([0] * 10 + [1] * 4 + [2] * 2 + [3] * 1)
    train, validation = split_by_level(labels, 0.2, seed=3)
    assert sorted(train + validation) == list(range(labels.size))
    assert np.bincount(labels[validation], minlength=4).tolist() == [2, 1, 1, 0]
    assert split_by_level(labels, 0.2, seed=3) == (train, validation)


def test_balanced_sampler_draws_levels_equally():
    from corrode.distributed import DistContext

    labels = np.array([0] * 90 + [1] * 10)
    weights = level_weights(labels, 4)
    assert weights[0] * 90 == pytest.approx(weights[1] * 10) and weights[2] == 0
    single = DistContext(0, 1, 0, torch.device("cpu"))
    draws = [
        labels[i] for epoch in range(20) for i in epoch_order(range(100), labels, "sampler", 0, epoch, single)
    ]
    assert 0.4 < np.mean(draws) < 0.6
    shares = [
        epoch_order(range(100), labels, "none", 0, 0, DistContext(r, 3, r, torch.device("cpu")))
        for r in (0, 1, 2)
    ]
    assert len({len(share) for share in shares}) == 1  # DDP needs equal counts per rank


# --- training ------------------------------------------------------------------------------------


def test_training_writes_a_complete_run(trained):
    root, run, lines = trained
    for name in (
        "config.json",
        "model.safetensors",
        "best.safetensors",
        "state.pt",
        "metrics.csv",
        "split.json",
    ):
        assert (run / name).is_file(), name
    for name in ("curves.png", "confusion.png"):
        assert Image.open(run / name).size[0] > 200
    rows = (run / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    for column in (
        "accuracy",
        "macro_f1",
        "mae_levels",
        "recall_none",
        "recall_severe",
        "confusion",
        "val_loss",
    ):
        assert column in header
    assert len(rows) == 3  # header + 2 epochs
    assert any("broken.png" in line and "skipped" in line for line in lines)
    split = json.loads((run / "split.json").read_text())
    assert len(split["validation"]) == 4 and not set(split["train"]) & set(split["validation"])


def test_resume_continues_after_the_last_epoch(trained, tmp_path):
    root, run, _ = trained
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    lines: list[str] = []
    train_classifier(tiny_config(root, copy, epochs=3), resume=copy, log=lines.append)
    epochs = [row.split(",")[0] for row in (copy / "metrics.csv").read_text().splitlines()[1:]]
    assert epochs == ["1", "2", "3"]
    assert any("resuming" in line for line in lines)
    with pytest.raises(UsageError):
        train_classifier(tiny_config(root, copy, epochs=3), resume=copy)  # nothing left to do
    with pytest.raises(ConfigError):
        train_classifier(tiny_config(root, copy, epochs=4, width=0.5), resume=copy)
    with pytest.raises(UsageError):
        train_classifier(tiny_config(root, copy))  # a run is there and --resume was not given


def test_training_without_data_folders(tmp_path):
    from corrode.datasets import DatasetError

    with pytest.raises(DatasetError):
        train_classifier(tiny_config(tmp_path, tmp_path / "run"))


# --- inference -----------------------------------------------------------------------------------


def test_classifier_load_predict_and_features(trained):
    from corrode.classify import Classifier

    _, run, _ = trained
    classifier = Classifier.load(run, device="cpu")
    assert classifier.image_size == 32
    batch = torch.rand(5, 3, 48, 48)  # any size: resized to the model's
    probabilities = classifier.predict(batch, batch_size=2)
    assert probabilities.shape == (5, 4)
    torch.testing.assert_close(probabilities.sum(1), torch.ones(5))
    arrays = [np.zeros((20, 30, 3), np.uint8), np.full((64, 64, 3), 200, np.uint8)]
    assert classifier.predict(arrays).shape == (2, 4)
    assert classifier.features(batch).shape == (5, classifier.num_features)


def test_classifier_load_refuses_another_kind(tmp_path):
    from corrode.checkpoint import CheckpointError, save_model
    from corrode.classify import Classifier

    path = save_model(tmp_path / "seg.safetensors", torch.nn.Linear(2, 2), kind="seg", config={})
    with pytest.raises(CheckpointError, match="expected a 'classifier' model"):
        Classifier.load(path, device="cpu")


# --- CLI -----------------------------------------------------------------------------------------


def test_classify_cli_lines_json_and_failures(trained, tmp_path):
    root, run, _ = trained
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("a.png", "b.png"):
        shutil.copy(root / "levels" / "severe" / "car0.png", photos / name)
    (photos / "c.png").write_bytes(b"")
    runner = CliRunner()
    result = runner.invoke(app, ["classify", str(photos), "--model", str(run), "--device", "cpu"])
    assert result.exit_code == 1
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) == 2 and all(line.split("\t")[1] in levels.NAMES for line in lines)
    assert "c.png" in result.stderr and "empty file" in result.stderr
    result = runner.invoke(
        app, ["classify", str(photos / "a.png"), "--model", str(run), "--json", "--device", "cpu"]
    )
    assert result.exit_code == 0
    record = json.loads(result.stdout.strip())
    assert record["level"] in levels.NAMES and sum(record["probabilities"].values()) == pytest.approx(
        1, abs=1e-3
    )


def test_classify_cli_without_a_model(tmp_path, monkeypatch):
    monkeypatch.setenv("CORRODE_HOME", str(tmp_path / "home"))
    image = tmp_path / "a.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(image)
    result = CliRunner().invoke(app, ["classify", str(image)])
    assert result.exit_code == 2 and "no classifier model" in result.stderr


def test_train_classifier_cli(tmp_path):
    root = make_levels(tmp_path / "data", per_level=(2, 2, 2, 2))
    run = tmp_path / "run"
    arguments = ["train-classifier", str(root), "--out", str(run), "--size", "32", "--width", "0.25"]
    arguments += ["--epochs", "1", "--encoder-weights", "none", "--device", "cpu", "--json"]
    result = CliRunner().invoke(app, ["--quiet", *arguments])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["epochs"] == 1 and (run / "model.safetensors").is_file()
    result = CliRunner().invoke(app, ["train-classifier", str(root), "--out", str(run), "--balance", "bogus"])
    assert result.exit_code == 2


class BoxSegmenter:
    """Stand-in segmenter: the centre of the image is the car, or nothing at all."""

    def __init__(self, empty: bool = False) -> None:
        self.empty = empty

    def probabilities_batch(self, images):
        maps = []
        for image in images:
            probability = np.zeros(image.shape[:2], np.float32)
            if not self.empty:
                height, width = probability.shape
                probability[height // 4 : 3 * height // 4, width // 4 : 3 * width // 4] = 1.0
            maps.append(probability)
        return maps


def test_classify_segments_the_car_first(trained, tmp_path):
    from corrode.classify import Classifier, ClassifyConfig, classify

    root, run, _ = trained
    classifier = Classifier.load(run, device="cpu")
    photo = tmp_path / "photo.png"
    Image.fromarray(np.full((40, 40, 3), 200, np.uint8)).save(photo)
    seen = []
    cfg = ClassifyConfig(inputs=(str(photo),))
    results = classify(cfg, classifier=classifier, segmenter=BoxSegmenter(), on_result=seen.append)
    assert len(results) == 1 and results[0].level in levels.NAMES and seen == results
    failed = classify(cfg, classifier=classifier, segmenter=BoxSegmenter(empty=True))
    assert failed[0].failed and "no car found" in failed[0].error


def test_augmentation_is_geometry_only():
    from corrode.train_classifier import augment_batch

    torch.manual_seed(0)
    black = torch.zeros(4, 3, 32, 32)
    assert torch.equal(augment_batch(black), black)
    car = torch.zeros(8, 3, 32, 32)
    car[:, :, 10:22, 8:24] = torch.tensor([0.7, 0.35, 0.15]).view(1, 3, 1, 1)  # one rust colour
    moved = augment_batch(car)
    assert moved.shape == car.shape
    area = (moved.amax(dim=1) > 0.05).float().sum(dim=(1, 2)) / (12 * 16)
    assert torch.all((area > 0.7) & (area < 1.4))  # zoom 1 +- 0.1 (edges blur by a pixel)
    inside = moved.amax(dim=1) > 0.6
    # Colours are only resampled, never shifted: full-strength pixels keep the rust colour.
    torch.testing.assert_close(
        moved.permute(0, 2, 3, 1)[inside][:, 1] / moved.permute(0, 2, 3, 1)[inside][:, 0],
        torch.full((int(inside.sum()),), 0.5),
        atol=0.02,
        rtol=0,
    )


def test_batch_norm_recalibration_mixes_the_levels():
    # Two levels told apart by brightness alone; a BatchNorm statistic computed on batches that each
    # hold one level sees only that level's spread. Given sorted by level, the recalibration must still
    # find the spread of the whole set.
    from corrode.train_classifier import recalibrate_batch_norm

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 1, 1, bias=False), torch.nn.BatchNorm2d(1))
    with torch.no_grad():
        model[0].weight.fill_(1.0)
    images = np.concatenate([np.full((32, 3, 4, 4), 40, np.uint8), np.full((32, 3, 4, 4), 200, np.uint8)])
    recalibrate_batch_norm(model, images, device=torch.device("cpu"), batch_size=8)
    values = torch.from_numpy(images).float().div(255).sum(1)
    assert float(model[1].running_mean) == pytest.approx(float(values.mean()), rel=0.05)
    assert float(model[1].running_var) > 0.5 * float(values.var())


def test_training_loss_falls_on_a_separable_set():
    # The model, its loss and the trainer's optimizer on 16 fixed cars of four levels: the loss falls.
    from corrode.train_classifier import build_optimizer

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    pairs = [draw_car(rng, level, size=32) for level in range(4) for _ in range(4)]
    images = torch.from_numpy(np.stack([image for image, _ in pairs])).permute(0, 3, 1, 2).float() / 255
    labels = torch.arange(4).repeat_interleave(4)
    model = LevelClassifier(ClassifierConfig(width=0.25, size=32, dropout=0.0)).train()
    optimizer = build_optimizer(model, tiny_config(None, Path("unused"), learning_rate=3e-3))
    losses = []
    for _ in range(25):
        loss = level_loss(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])


def test_training_logs_the_calibration_error(trained):
    _, run, lines = trained
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert all(0.0 <= float(row["ece"]) <= 1.0 for row in rows)
    assert any("calibration error" in line for line in lines)


def test_temperature_rescales_confidence_and_keeps_the_level():
    torch.manual_seed(0)
    plain = LevelClassifier(ClassifierConfig(width=0.25, size=32)).eval()
    warm = LevelClassifier(ClassifierConfig(width=0.25, size=32, temperature=2.0)).eval()
    warm.load_state_dict(plain.state_dict())
    images = torch.rand(4, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(warm(images), plain(images) / 2.0)
    with pytest.raises(ConfigError):
        ClassifierConfig(temperature=0.0)


def test_training_saves_the_fitted_temperature(trained):
    from corrode.checkpoint import read_model
    from corrode.classification import Classifier

    _, run, _ = trained
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    last = rows[-1]
    assert float(last["temperature"]) > 0
    assert 0.0 <= float(last["ece_uncalibrated"]) <= 1.0
    config, _ = read_model(run / "model.safetensors", kind="classifier")
    assert config["temperature"] == pytest.approx(float(last["temperature"]))
    assert Classifier.load(run / "model.safetensors").model.config.temperature == pytest.approx(
        float(last["temperature"])
    )


def test_local_features_join_the_pooled_features():
    torch.manual_seed(0)
    plain = LevelClassifier(ClassifierConfig(width=0.25, size=32))
    local = LevelClassifier(ClassifierConfig(width=0.25, size=32, local_features=8)).eval()
    assert local.num_features == plain.num_features + 2 * 8
    images = torch.rand(2, 3, 32, 32)
    assert local.features(images).shape == (2, local.num_features)
    assert local(images).shape == (2, 4)
    # Off, the network is MobileNetV2 alone: weights saved before the option existed still load.
    assert not any(key.startswith("taps.") for key in plain.state_dict())
    LevelClassifier(ClassifierConfig(width=0.25, size=32)).load_state_dict(plain.state_dict(), strict=True)
    with pytest.raises(ConfigError):
        ClassifierConfig(local_features=-1)


def test_car_pooling_averages_over_the_car_only():
    torch.manual_seed(0)
    image_pooled = LevelClassifier(ClassifierConfig(width=0.25, size=64, local_features=8)).eval()
    car_pooled = LevelClassifier(
        ClassifierConfig(width=0.25, size=64, local_features=8, pooling="car")
    ).eval()
    car_pooled.load_state_dict(image_pooled.state_dict(), strict=True)  # the option adds no weights
    with torch.no_grad():
        # A car that fills the frame has no background: both poolings are the same average.
        full = torch.rand(2, 3, 64, 64) * 0.9 + 0.05
        assert torch.allclose(image_pooled.features(full), car_pooled.features(full), atol=1e-5)
        # The same texture on a small car: the rust share of the car is what the car average keeps.
        small = torch.zeros(2, 3, 64, 64)
        small[:, :, 16:48, 16:48] = full[:, :, 16:48, 16:48]
        tap = car_pooled.features(small)[:, -8:]
        maps = car_pooled.taps["6"](car_pooled.encoder[:7]((small - car_pooled.mean) / car_pooled.std))
        weights = torch.nn.functional.adaptive_avg_pool2d(
            (small.amax(1, keepdim=True) > 0).float(), maps.shape[2:]
        )
        expected = (maps * weights).sum((2, 3)) / weights.sum((2, 3))
        assert torch.allclose(tap, expected, atol=1e-5)
        assert not torch.allclose(tap, maps.mean((2, 3)), atol=1e-3)
        # No car at all: finite features, not a division by zero.
        assert torch.isfinite(car_pooled.features(torch.zeros(1, 3, 64, 64))).all()
    # Weights saved before the option existed carry no `pooling`: they read as image pooling.
    assert ClassifierConfig().pooling == "image"
    assert TrainClassifierConfig(data=Path("x")).model_config().pooling == "car_max"
    with pytest.raises(ConfigError):
        ClassifierConfig(pooling="mean")


def test_car_max_pooling_adds_the_strongest_local_response():
    torch.manual_seed(0)
    mean_only = LevelClassifier(ClassifierConfig(width=0.25, size=64, local_features=8, pooling="car"))
    with_max = LevelClassifier(ClassifierConfig(width=0.25, size=64, local_features=8, pooling="car_max"))
    assert with_max.num_features == mean_only.num_features + 2 * 8
    shared = {k: v for k, v in mean_only.state_dict().items() if not k.startswith("head.")}
    with_max.load_state_dict(shared, strict=False)  # the same network; only the head is wider
    images = torch.zeros(2, 3, 64, 64)
    images[:, :, 16:48, 8:56] = torch.rand(2, 3, 32, 48) * 0.8 + 0.1
    with torch.no_grad():
        mean_only.eval(), with_max.eval()
        both = with_max.features(images)
        means = mean_only.features(images)
    final = means.shape[1] - 2 * 8
    # Each tap gives its car average (as `car` pooling does), then its maximum over the car.
    assert torch.allclose(both[:, :final], means[:, :final], atol=1e-5)
    first_tap_mean, first_tap_max = both[:, final : final + 8], both[:, final + 8 : final + 16]
    assert torch.allclose(first_tap_mean, means[:, final : final + 8], atol=1e-5)
    assert (first_tap_max >= first_tap_mean - 1e-6).all()
    assert with_max(images).shape == (2, 4)


def test_weight_average_follows_the_ema_formula():
    from corrode.train_classifier import weight_average

    assert weight_average(torch.nn.Linear(2, 1), 0.0) is None
    model = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema = weight_average(model, 0.9)
    ema.update_parameters(model)  # the first update copies the weights
    with torch.no_grad():
        model.weight.fill_(3.0)
    ema.update_parameters(model)
    assert torch.allclose(ema.module.weight, torch.full((1, 2), 0.9 * 1.0 + 0.1 * 3.0))
    assert torch.equal(model.weight, torch.full((1, 2), 3.0))  # the model's own weights are untouched


def test_training_saves_and_resumes_the_weight_average(tmp_path):
    # With ema_decay the weights files hold the moving average (state.pt keeps both), not the last step.
    from corrode import checkpoint, runs

    root = make_levels(tmp_path / "data", per_level=(4, 4, 4, 4))
    run = train_classifier(tiny_config(root, tmp_path / "run", epochs=1, ema_decay=0.5))
    _, saved = checkpoint.read_model(run / runs.WEIGHTS, kind="classifier")
    state = checkpoint.load_state(run / runs.STATE)
    key = "head.weight"
    assert torch.equal(saved[key].float(), state["ema"][f"module.{key}"].float())
    assert not torch.equal(saved[key].float(), state["model"][key].float())
    assert json.loads((run / "config.json").read_text())["ema_decay"] == 0.5
    lines: list[str] = []
    train_classifier(tiny_config(root, run, epochs=2, ema_decay=0.5), resume=run, log=lines.append)
    assert any("resuming" in line for line in lines)
    assert int(checkpoint.load_state(run / runs.STATE)["ema"]["n_averaged"]) > int(state["ema"]["n_averaged"])


def test_stem_stride_one_keeps_the_stem_at_full_resolution():
    torch.manual_seed(0)
    strided = LevelClassifier(ClassifierConfig(width=0.25, size=64, local_features=8))
    full = LevelClassifier(ClassifierConfig(width=0.25, size=64, local_features=8, stem_stride=1))
    full.load_state_dict(strided.state_dict(), strict=True)  # the option adds no weights
    images = torch.rand(2, 3, 64, 64)
    sizes = {}
    for name, model in (("strided", strided), ("full", full)):
        x, shapes = images, []
        for block in model.encoder:
            x = block(x)
            shapes.append(tuple(x.shape[2:]))
        sizes[name] = shapes
    assert sizes["strided"][0] == (32, 32) and sizes["full"][0] == (64, 64)
    assert sizes["full"][1:] == sizes["strided"][1:]  # from block 1 on, every map keeps its size
    assert full.eval()(images).shape == (2, 4)
    assert ClassifierConfig().stem_stride == 2  # weights saved before the option existed
    with pytest.raises(ConfigError):
        ClassifierConfig(stem_stride=4)


def test_mirror_averages_the_two_views_in_eval_mode_only():
    torch.manual_seed(0)
    plain = LevelClassifier(ClassifierConfig(width=0.25, size=64, local_features=8, temperature=2.0))
    mirrored = LevelClassifier(
        ClassifierConfig(width=0.25, size=64, local_features=8, temperature=2.0, mirror=True)
    )
    mirrored.load_state_dict(plain.state_dict(), strict=True)  # the option adds no weights
    plain.eval()
    mirrored.eval()
    images = torch.rand(3, 3, 64, 64)
    with torch.no_grad():
        expected = (plain(images) + plain(images.flip(3))) / 2
        got = mirrored(images)
        assert torch.allclose(got, expected, atol=1e-5)
        assert torch.allclose(mirrored(images.flip(3)), got, atol=1e-5)  # a mirrored car reads the same
        assert not torch.allclose(plain(images), plain(images.flip(3)), rtol=0, atol=1e-6)
        mirrored.train()
        plain.train()
        torch.manual_seed(1)
        train_mirrored = mirrored(images)
        torch.manual_seed(1)
        assert torch.allclose(train_mirrored, plain(images))  # training: one pass
    assert ClassifierConfig().mirror is False  # weights saved before the option existed


def test_training_saves_the_mirror_option_and_the_cli_turns_it_off(tmp_path):
    from corrode import checkpoint, runs

    root = make_levels(tmp_path / "data", per_level=(4, 4, 4, 4))
    run = train_classifier(tiny_config(root, tmp_path / "run", epochs=1))
    config, _ = checkpoint.read_model(run / runs.WEIGHTS, kind="classifier")
    assert config["mirror"] is True  # the default
    result = CliRunner().invoke(
        app,
        [
            "train-classifier",
            str(root),
            "--out",
            str(tmp_path / "off"),
            "--no-mirror",
            *("--size", "32", "--width", "0.25", "--epochs", "1", "--batch-size", "4", "--device", "cpu"),
        ],
    )
    assert result.exit_code == 0, result.output
    config, _ = checkpoint.read_model(tmp_path / "off" / runs.WEIGHTS, kind="classifier")
    assert config["mirror"] is False

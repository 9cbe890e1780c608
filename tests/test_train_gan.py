"""corrode.train_gan: data errors, one step, the run folder, exact resume, DDP with two gloo processes."""

from __future__ import annotations

import json
import math
import os
import socket
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from corrode.checkpoint import read_model
from corrode.cli import app
from corrode.datasets import DatasetError
from corrode.distributed import DistContext
from corrode.errors import ConfigError, UsageError
from corrode.runs import MetricsLog
from corrode.train_gan import (
    DomainSampler,
    GanTrainer,
    TrainGanConfig,
    changed_share,
    ema_with_warmup,
    load_levels,
    train_gan,
    with_preset,
)
from corrode.training import Interrupted

COUNTS = {"none": 5, "mild": 2, "moderate": 3, "severe": 2}
CPU = DistContext(0, 1, 0, torch.device("cpu"))


def make_levels(root: Path, counts: dict[str, int] = COUNTS, size: tuple[int, int] = (24, 28)) -> Path:
    rng = np.random.default_rng(0)
    for level, count in counts.items():
        (root / level).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            image = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
            image[:, :4] = 0  # black background strip, as optimize-masks writes
            Image.fromarray(image).save(root / level / f"{level}_{i}.png")
    return root


def tiny(data: Path, out: Path, **changes) -> TrainGanConfig:
    base = TrainGanConfig(
        data=data,
        out=out,
        image_size=32,
        epochs=2,
        decay_epochs=1,
        base_channels=4,
        residual_blocks=1,
        discriminator_channels=4,
        pool_size=3,
        samples=2,
        device="cpu",
        checkpoint_every=0,
    )
    return replace(base, **changes)


@pytest.fixture(autouse=True)
def one_thread():
    # Tiny models: one thread avoids OpenMP spin overhead, and keeps runs bit-for-bit repeatable.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return make_levels(tmp_path / "levels")


# ------------------------------------------------------------------------------------------- config


def test_changed_share_counts_car_pixels_only() -> None:
    clean = torch.full((1, 3, 4, 4), -1.0)
    clean[..., :2] = 0.2  # the car: the left half; the right half is black background
    assert float(changed_share(clean, clean)) == 0.0
    painted = clean.clone()
    painted[:, 0, :2, :2] = 0.9  # a quarter of the image, half of the car
    painted[:, 1, :, 2:] = 0.5  # background changes do not count
    assert float(changed_share(painted, clean)) == 0.5
    assert float(changed_share(clean + 0.1, clean)) == 0.0  # below the threshold


def test_presets_and_bad_configs(tmp_path: Path) -> None:
    config = TrainGanConfig(data=tmp_path)
    assert (config.epochs, config.batch_size, config.cycle_weight, config.pool_size) == (200, 1, 10.0, 50)
    assert (config.learning_rate, config.beta1, config.gan_loss, config.discriminator) == (
        2e-4,
        0.5,
        "lsgan",
        "paper",
    )
    recommended = with_preset(config, "recommended")
    assert recommended.attention and recommended.identity_weight > 0
    assert recommended.identity_mappings == "to-clean" and recommended.cycle_weight < config.cycle_weight
    assert recommended.upsample == "resize"  # no transposed-convolution checkerboard in the rust
    # rust-coloured, opaque, and read as its level by a critic (the 64 px study's choices)
    assert recommended.rust_layer == "palette" and recommended.model_config().rust_layer == "palette"
    assert recommended.attention_binary > 0 and recommended.level_weight > 0
    assert config.rust_layer == "free" and config.attention_binary == 0 == config.level_weight
    # a critic that learns from more real cars than the step's and sees rust anywhere on the car
    assert (recommended.critic_pooling, recommended.critic_batch) == ("car_max", 3)
    assert (config.critic_pooling, config.critic_batch) == ("car", 0)
    with pytest.raises(UsageError):
        with_preset(config, "fastest")
    for bad in (
        {"image_size": 30},
        {"decay_epochs": 300},
        {"diffaugment": "color,zoom"},
        {"generator": "onehot"},
        {"cycle_schedule": "linear"},
        {"gan_loss": "hinge"},
        {"upsample": "pixelshuffle"},
        {"cycle_noise": -0.1},
    ):
        with pytest.raises(ConfigError):
            replace(config, **bad)


# --------------------------------------------------------------------------------------------- data


def test_missing_and_empty_levels_are_named(tmp_path: Path) -> None:
    root = make_levels(tmp_path / "a", {"none": 2, "mild": 1, "moderate": 1})
    with pytest.raises(DatasetError, match="severe"):
        load_levels(root, 16)
    (root / "severe").mkdir()
    with pytest.raises(DatasetError, match="holds no images"):
        load_levels(root, 16)
    with pytest.raises(DatasetError, match="no such folder"):
        load_levels(tmp_path / "nowhere", 16)


def test_unreadable_images_are_each_named(data: Path) -> None:
    (data / "mild" / "broken.png").write_bytes(b"not a png at all")
    (data / "severe" / "empty.jpg").write_bytes(b"")
    with pytest.raises(DatasetError) as info:
        load_levels(data, 32)
    assert (
        "broken.png" in str(info.value)
        and "empty.jpg" in str(info.value)
        and "2 unreadable" in str(info.value)
    )


def test_masks_folder_is_applied_on_the_fly(data: Path) -> None:
    masks = data / "masks"
    for level in COUNTS:
        (masks / level).mkdir(parents=True)
        for path in (data / level).glob("*.png"):
            mask = np.zeros((24, 28), np.uint8)
            mask[:, 14:] = 255
            Image.fromarray(mask).save(masks / level / path.name)
    images, _ = load_levels(data, 32)
    assert images["none"][:, :, :, :7].max() == 0 and images["none"][:, :, :, 9:].max() > 0
    (masks / "mild" / "mild_0.png").unlink()
    with pytest.raises(DatasetError, match="mild_0.png"):
        load_levels(data, 32)


def test_sampler_shuffles_each_pass_and_splits_ranks() -> None:
    sampler = DomainSampler(5, 1, seed=0)
    first = [sampler.next()[0] for _ in range(5)]
    second = [sampler.next()[0] for _ in range(5)]
    assert sorted(first) == sorted(second) == list(range(5))
    ranks = [DomainSampler(6, 1, seed=3, rank=r, world=2) for r in range(2)]
    drawn = [[s.next()[0] for _ in range(3)] for s in ranks]
    assert sorted(drawn[0] + drawn[1]) == list(range(6))


# --------------------------------------------------------------------------------------------- step


def test_identity_to_clean_leaves_out_the_rust_painters_identity(data: Path, tmp_path: Path) -> None:
    images, _ = load_levels(data, 32)
    totals = {}
    for mappings in ("both", "to-clean"):
        torch.manual_seed(0)
        config = tiny(
            data, tmp_path / mappings, identity_weight=0.5, attention=True, identity_mappings=mappings
        )
        totals[mappings] = GanTrainer(config, images, CPU).train_step()
    both, to_clean = totals["both"], totals["to-clean"]
    painters = sum(both[f"identity_none_to_{level}"] for level in ("mild", "moderate", "severe"))
    assert both["gen_total"] - to_clean["gen_total"] == pytest.approx(0.5 * 10.0 * painters, rel=1e-4)
    with pytest.raises(ConfigError, match="identity_mappings"):
        tiny(data, tmp_path, identity_mappings="sideways")


def test_one_step_changes_every_network(data: Path, tmp_path: Path) -> None:
    config = tiny(
        data, tmp_path / "run", identity_weight=0.5, diffaugment="color,translation,cutout", attention=True
    )
    images, _ = load_levels(data, 32)
    trainer = GanTrainer(config, images, CPU)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    losses = trainer.train_step()
    after = trainer.model.state_dict()
    for prefix in [
        "generators.translators.none_to_mild",
        "generators.translators.severe_to_none",
        "discriminators.judges.none",
        "discriminators.judges.moderate",
    ]:
        changed = [not torch.equal(before[k], after[k]) for k in before if k.startswith(prefix)]
        assert any(changed), prefix
    expected = {
        "gen_none_to_mild",
        "gen_mild_to_none",
        "cycle_none_mild_none",
        "cycle_mild_none_mild",
        "identity_none_to_severe",
        "disc_none",
        "disc_severe",
        "gen_total",
        "disc_total",
        "lambda",
        "lr",
    }
    assert expected <= set(losses)
    assert all(np.isfinite(v) for v in losses.values())
    assert trainer.steps_per_epoch == 5 and trainer.total_steps == 10 and trainer.step == 1


def test_ema_averages_the_generators_and_is_what_gets_saved(data: Path, tmp_path: Path) -> None:
    images, _ = load_levels(data, 32)
    trainer = GanTrainer(tiny(data, tmp_path / "run", ema=0.75), images, CPU)
    capped = ema_with_warmup(0.75)
    average = [torch.zeros(2)]
    capped(average, [torch.ones(2)], torch.tensor(1000))
    assert torch.allclose(average[0], torch.full((2,), 0.25))
    key = "translators.none_to_mild.head.1.weight"
    trained = []
    for _ in range(3):
        trainer.train_step()
        trained.append(trainer.generators.state_dict()[key].clone())
    # the first update copies; the decay ramps up as (1 + n) / (10 + n), capped at 0.75
    d1, d2 = 2 / 11, 3 / 12
    expected = d2 * (d1 * trained[0] + (1 - d1) * trained[1]) + (1 - d2) * trained[2]
    assert torch.allclose(trainer.exported.state_dict()[key], expected, atol=1e-6)
    assert not torch.allclose(trainer.exported.state_dict()[key], trained[2])
    assert tiny(data, tmp_path).ema == 0.0 and GanTrainer(tiny(data, tmp_path), images, CPU).averaged is None
    with pytest.raises(ConfigError, match="ema"):
        tiny(data, tmp_path, ema=1.0)
    out = train_gan(tiny(data, tmp_path / "saved", ema=0.75))
    _, saved = read_model(out / "model.safetensors", kind="gan")
    state = torch.load(out / "state.pt", weights_only=True)
    assert torch.equal(saved[key], state["averaged"][f"module.{key}"])
    assert not torch.equal(saved[key], state["generators"][key])


def test_discriminator_clean_is_not_trained_three_times_as_hard(data: Path, tmp_path: Path) -> None:
    images, _ = load_levels(data, 32)
    trainer = GanTrainer(tiny(data, tmp_path / "run", pool_size=0, flip=False), images, CPU)
    # Every discriminator answers 1 everywhere (last conv: zero weights, bias 1). LSGAN: real (1-1)^2 = 0,
    # each fake 1^2 = 1, so 0.5 * (real + mean of fakes) = 0.5; summing D_clean's three fakes gives 1.5.
    for discriminator in trainer.discriminators.judges.values():
        last = [m for m in discriminator.modules() if isinstance(m, torch.nn.Conv2d)][-1]
        with torch.no_grad():
            last.weight.zero_()
            last.bias.fill_(1.0)
    losses = trainer.train_step()
    for level in ("none", "mild", "moderate", "severe"):
        assert losses[f"disc_{level}"] == pytest.approx(0.5, abs=1e-6), level


def test_decay_epochs_default_to_half_of_epochs(tmp_path: Path) -> None:
    assert TrainGanConfig(data=tmp_path, epochs=6).decay_epochs_or_half() == 3
    assert TrainGanConfig(data=tmp_path).decay_epochs_or_half() == 100  # the paper's 100 of 200
    assert TrainGanConfig(data=tmp_path, epochs=6, decay_epochs=2).decay_epochs_or_half() == 2
    with pytest.raises(ConfigError, match="decay_epochs"):
        TrainGanConfig(data=tmp_path, epochs=6, decay_epochs=7)


def test_bad_images_are_skipped_with_one_line_each_and_training_goes_on(data: Path, tmp_path: Path) -> None:
    (data / "mild" / "broken.png").write_bytes(b"not a png at all")
    (data / "severe" / "empty.jpg").write_bytes(b"")
    lines: list[str] = []
    out = train_gan(tiny(data, tmp_path / "run", epochs=1, decay_epochs=0), log=lines.append)
    skipped = [line for line in lines if line.startswith("skipped")]
    assert (
        len(skipped) == 2
        and any("broken.png" in x for x in skipped)
        and any("empty.jpg" in x for x in skipped)
    )
    assert len(MetricsLog(out / "metrics.csv").rows()) == 5


# ---------------------------------------------------------------------------------------------- run


def test_run_folder_holds_everything(data: Path, tmp_path: Path) -> None:
    out = train_gan(
        tiny(
            data,
            tmp_path / "run",
            generator="shared",
            gan_loss="log",
            cycle_schedule="linear",
            cycle_weight_final=5.0,
        )
    )
    names = {p.name for p in out.iterdir()}
    assert {
        "config.json",
        "metrics.csv",
        "model.safetensors",
        "state.pt",
        "generator_loss.png",
        "cycle_loss.png",
        "discriminator_loss.png",
        "changed.png",
        "samples",
    } <= names
    assert sorted(p.name for p in (out / "samples").iterdir()) == ["epoch_001.png", "epoch_002.png"]
    grid = np.asarray(Image.open(out / "samples" / "epoch_002.png"))
    assert grid.shape[0] > 2 * 32 and grid.std() > 0
    rows = MetricsLog(out / "metrics.csv").rows()
    assert [int(r["step"]) for r in rows] == list(range(1, 11))
    assert float(rows[0]["lambda"]) == 10.0 and float(rows[-1]["lambda"]) == 5.0
    assert float(rows[-1]["lr"]) < float(rows[0]["lr"])
    for level in ("mild", "moderate", "severe"):
        assert all(0.0 <= float(r[f"changed_none_to_{level}"]) <= 1.0 for r in rows)
    config, state = read_model(out / "model.safetensors", kind="gan")
    assert config["image_size"] == 32 and config["model"]["generator"] == "shared"
    assert json.loads((out / "config.json").read_text())["gan_loss"] == "log"
    with pytest.raises(UsageError, match="resume"):
        train_gan(tiny(data, tmp_path / "run"))


@pytest.mark.slow  # two runs of two epochs
def test_resume_equals_uninterrupted_training(data: Path, tmp_path: Path) -> None:
    options = {
        "identity_weight": 0.5,
        "diffaugment": "color,translation,cutout",
        "cycle_noise": 0.1,
        "ema": 0.9,
        "checkpoint_every": 3,
    }
    whole = train_gan(tiny(data, tmp_path / "whole", **options))

    def interrupt(step: int, total: int, losses: dict) -> None:
        if step == 4:  # mid-epoch, after a checkpoint at 3: the Ctrl-C path writes step 4
            raise KeyboardInterrupt

    config = tiny(data, tmp_path / "cut", **options)
    cut = tmp_path / "cut"
    with pytest.raises(Interrupted) as info:
        train_gan(config, progress=interrupt)
    assert info.value.exit_code == 130
    assert len(MetricsLog(tmp_path / "cut" / "metrics.csv").rows()) == 4
    train_gan(config, resume=cut)
    expected = MetricsLog(whole / "metrics.csv").rows()
    got = MetricsLog(tmp_path / "cut" / "metrics.csv").rows()
    assert len(got) == len(expected) == 10
    for row_whole, row_cut in zip(expected, got, strict=True):
        for key, value in row_whole.items():
            if key != "seconds":
                assert float(row_cut[key]) == pytest.approx(float(value), rel=1e-5, abs=1e-7), (
                    row_whole["step"],
                    key,
                )
    with pytest.raises(ConfigError, match="base_channels 4 -> 8"):
        train_gan(replace(config, base_channels=8), resume=cut)
    # A run made before an option existed has no such key in its config.json: it had the default.
    saved = json.loads((tmp_path / "cut" / "config.json").read_text())
    del saved["upsample"]
    (tmp_path / "cut" / "config.json").write_text(json.dumps(saved))
    train_gan(replace(config, epochs=3, decay_epochs=1), resume=cut)
    with pytest.raises(ConfigError, match="upsample"):
        train_gan(replace(config, epochs=3, decay_epochs=1, upsample="resize"), resume=cut)


# ---------------------------------------------------------------------------------------------- DDP


def _free_ports() -> tuple[int, int]:
    with socket.socket() as first, socket.socket() as second:
        first.bind(("127.0.0.1", 0))
        second.bind(("127.0.0.1", 0))
        return first.getsockname()[1], second.getsockname()[1]


def _ddp_worker(rank: int, world: int, ports: tuple[int, int], data: str, out: str, report: str) -> None:
    os.environ.update(
        {
            "RANK": str(rank),
            "WORLD_SIZE": str(world),
            "LOCAL_RANK": str(rank),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(ports[0]),
        }
    )
    torch.set_num_threads(1)
    from corrode import distributed

    config = tiny(Path(data), Path(out))
    images, _ = load_levels(Path(data), 32)
    context = distributed.setup("cpu")
    trainer = GanTrainer(config, images, context)
    drawn = []
    for _ in range(2):
        drawn.append(trainer.samplers["none"].state_dict()["order"][:])
        trainer.train_step()
    torch.save({"weights": trainer.model.state_dict(), "a": trainer.images["none"].shape}, f"{report}.{rank}")
    distributed.teardown(context)
    os.environ["MASTER_PORT"] = str(ports[1])  # a fresh rendezvous: the first store may linger on its port
    train_gan(config)  # the whole loop under DDP: rank 0 writes the run folder


@pytest.mark.slow
def test_ddp_two_gloo_processes(data: Path, tmp_path: Path) -> None:
    import torch.multiprocessing as mp

    out, report = tmp_path / "ddp", tmp_path / "report"
    mp.spawn(_ddp_worker, args=(2, _free_ports(), str(data), str(out), str(report)), nprocs=2, join=True)
    ranks = [torch.load(f"{report}.{r}", weights_only=True)["weights"] for r in range(2)]
    # gradients were all-reduced: both ranks hold the same weights after two steps
    for key in ranks[0]:
        assert torch.allclose(ranks[0][key], ranks[1][key], atol=1e-6), key
    rows = MetricsLog(out / "metrics.csv").rows()
    assert len(rows) == 2 * 3  # 5 clean images / (batch 1 x 2 ranks) -> 3 steps per epoch
    assert (out / "model.safetensors").exists() and (out / "samples" / "epoch_002.png").exists()


def _ddp_resume_worker(rank: int, world: int, ports: tuple[int, ...], data: str, root: str) -> None:
    os.environ.update(
        {"RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank), "MASTER_ADDR": "127.0.0.1"}
    )
    torch.set_num_threads(1)
    options = {"identity_weight": 0.5, "diffaugment": "color,translation", "ema": 0.9, "image_size": 40}
    options["crop_size"] = 32

    def interrupt(step: int, total: int, losses: dict) -> None:
        if step == 2:  # mid-epoch 1 (3 steps of 2 ranks x 1); only rank 0 reports, so only it stops
            raise KeyboardInterrupt

    os.environ["MASTER_PORT"] = str(ports[0])
    train_gan(tiny(Path(data), Path(root) / "straight", **options))
    os.environ["MASTER_PORT"] = str(ports[1])
    cut = Path(root) / "cut"
    try:
        train_gan(tiny(Path(data), cut, **options), progress=interrupt)
    except Interrupted:
        pass
    else:
        raise AssertionError(f"rank {rank} was not stopped")
    os.environ["MASTER_PORT"] = str(ports[2])
    train_gan(tiny(Path(data), cut, **options), resume=cut)


@pytest.mark.slow
def test_ddp_mid_epoch_resume_equals_a_straight_run(data: Path, tmp_path: Path) -> None:
    import torch.multiprocessing as mp

    ports = (*_free_ports(), *_free_ports()[:1])
    mp.spawn(_ddp_resume_worker, args=(2, ports, str(data), str(tmp_path)), nprocs=2, join=True)
    straight = MetricsLog(tmp_path / "straight" / "metrics.csv").rows()
    resumed = MetricsLog(tmp_path / "cut" / "metrics.csv").rows()
    assert len(straight) == len(resumed) == 2 * 3
    for a, b in zip(straight, resumed, strict=True):
        assert {k: v for k, v in a.items() if k != "seconds"} == {
            k: v for k, v in b.items() if k != "seconds"
        }


# ---------------------------------------------------------------------------------------------- CLI


def test_cli_trains_and_reports(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli"
    args = [
        "train-gan",
        str(data),
        "--out",
        str(out),
        "--size",
        "32",
        "--epochs",
        "1",
        "--decay-epochs",
        "0",
        "--base-channels",
        "4",
        "--residual-blocks",
        "1",
        "--discriminator-channels",
        "4",
        "--samples",
        "1",
        "--device",
        "cpu",
        "--preset",
        "recommended",
        "--diffaugment",
        "translation",
        "--upsample",
        "resize",
        "--cycle-noise",
        "0.05",
        "--rust-layer",
        "palette",
        "--json",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["steps"] == 5
    saved = json.loads((out / "config.json").read_text())
    assert (
        saved["attention"] is True
        and saved["identity_weight"] == 0.5
        and saved["diffaugment"] == "translation"
    )
    # the preset's own choices, and options given on the command line over them
    assert saved["identity_mappings"] == "to-clean" and saved["ema"] == 0.999
    assert saved["upsample"] == "resize" and saved["cycle_noise"] == 0.05
    assert saved["rust_layer"] == "palette"
    again = CliRunner().invoke(
        app, ["train-gan", "--resume", str(out), "--epochs", "2", "--decay-epochs", "0"]
    )
    assert again.exit_code == 0, again.output
    assert len(MetricsLog(out / "metrics.csv").rows()) == 10


def test_cli_bad_inputs(tmp_path: Path) -> None:
    root = make_levels(tmp_path / "bad", {"none": 1, "mild": 1, "moderate": 1})
    result = CliRunner().invoke(app, ["train-gan", str(root), "--out", str(tmp_path / "r"), "--size", "32"])
    assert result.exit_code == 2 and "severe" in result.output
    result = CliRunner().invoke(app, ["train-gan", str(root), "--size", "18"])
    assert result.exit_code == 2 and "multiple of 4" in result.output
    result = CliRunner().invoke(app, ["train-gan", str(root), "--preset", "best"])
    assert result.exit_code == 2 and "preset" in result.output
    result = CliRunner().invoke(app, ["train-gan", "--resume", str(tmp_path / "nothing")])
    assert result.exit_code == 2


# ------------------------------------------------------------------------------ --load-size / --crop-size


def test_crop_size_is_validated_against_the_load_size(data: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"crop_size .* up to the load size \(32\), got 36"):
        tiny(data, tmp_path / "r", crop_size=36)
    with pytest.raises(ConfigError, match="multiple of 4"):
        tiny(data, tmp_path / "r", image_size=40, crop_size=34)
    result = CliRunner().invoke(app, ["train-gan", str(data), "--load-size", "32", "--crop-size", "40"])
    assert result.exit_code == 2 and "crop_size" in result.output and "Traceback" not in result.output


def test_crops_are_windows_of_the_loaded_images_drawn_per_level_and_step(data: Path, tmp_path: Path) -> None:
    config = tiny(data, tmp_path / "r", image_size=40, crop_size=32, flip=False)
    images, _ = load_levels(data, 40)
    trainer = GanTrainer(config, images, CPU)
    boxes = set()
    for _ in range(6):
        batch = trainer._batch("mild")
        assert batch.shape == (1, 3, 32, 32)
        index = trainer.samplers["mild"].order[trainer.samplers["mild"].position - 1]
        source = images["mild"][index].float() / 127.5 - 1.0
        found = [
            (top, left)
            for top in range(9)
            for left in range(9)
            if torch.equal(source[:, top : top + 32, left : left + 32], batch[0])
        ]
        assert found, "the crop is not a window of the loaded image"
        boxes.add(found[0])
    assert len(boxes) > 1  # a new box each step
    # Without a crop the batch is the whole loaded image, as before crops existed.
    whole = GanTrainer(tiny(data, tmp_path / "w", image_size=40, flip=False), images, CPU)
    assert whole._batch("none").shape == (1, 3, 40, 40)


@pytest.mark.slow  # two runs of two epochs
def test_crops_train_resume_exactly_and_cannot_change_on_resume(data: Path, tmp_path: Path) -> None:
    options = {"image_size": 40, "crop_size": 32, "checkpoint_every": 3}
    whole = train_gan(tiny(data, tmp_path / "whole", **options))
    grid = np.asarray(Image.open(whole / "samples" / "epoch_002.png"))
    assert grid.size > 0  # sample grids translate the whole 40 px image (fully convolutional)
    config, _ = read_model(whole / "model.safetensors", kind="gan")
    assert (config["image_size"], config["crop_size"]) == (40, 32)

    def interrupt(step: int, total: int, losses: dict) -> None:
        if step == 4:
            raise KeyboardInterrupt

    cut = tmp_path / "cut"
    with pytest.raises(Interrupted):
        train_gan(tiny(data, cut, **options), progress=interrupt)
    with pytest.raises(ConfigError, match="crop_size 32 -> 0"):
        train_gan(tiny(data, cut, **{**options, "crop_size": 0}), resume=cut)
    train_gan(tiny(data, cut, **options), resume=cut)
    expected, got = MetricsLog(whole / "metrics.csv").rows(), MetricsLog(cut / "metrics.csv").rows()
    assert len(got) == len(expected) == 10
    for row_whole, row_cut in zip(expected, got, strict=True):
        assert {k: v for k, v in row_whole.items() if k != "seconds"} == {
            k: v for k, v in row_cut.items() if k != "seconds"
        }


# ------------------------------------------------------------------ regularisers of the GAN study


def test_total_variation_and_r1_known_answers() -> None:
    from corrode.gan.losses import r1_penalty, total_variation

    solid = torch.zeros(1, 1, 4, 4)
    solid[..., :2] = 1.0  # one patch: a single vertical edge
    speckle = torch.zeros(1, 1, 4, 4)
    speckle[..., ::2, ::2] = 1.0
    speckle[..., 1::2, 1::2] = 1.0  # a checkerboard of the same area
    assert float(total_variation(torch.ones(1, 1, 4, 4))) == 0.0
    assert float(total_variation(solid)) == pytest.approx(4 / 12)  # 4 of 12 horizontal pairs differ
    assert float(total_variation(speckle)) == pytest.approx(2.0)
    weights = torch.tensor([1.0, -2.0, 2.0]).view(1, 3, 1, 1)
    real = torch.rand(2, 3, 4, 4, requires_grad=True)
    scores = (real * weights).sum(1, keepdim=True)  # gradient = the weights at every pixel
    assert float(r1_penalty(scores, real)) == pytest.approx(9.0 * 16)


def test_study_options_are_validated(tmp_path: Path) -> None:
    config = TrainGanConfig(data=tmp_path)
    assert (config.attention_tv, config.attention_sparsity, config.r1_weight) == (0.0, 0.0, 0.0)
    assert config.discriminator_norm == "none" and config.model_config().discriminator_norm == "none"
    for bad in (
        {"attention_tv": 1.0},  # no attention map to regularise
        {"attention_binary": 1.0},
        {"attention": True, "attention_sparsity": -1.0},
        {"r1_weight": -0.1},
        {"discriminator_norm": "layer"},
        {"discriminator": "multiscale", "image_size": 32},
        {"rust_layer": "palette"},  # no attention layer to restrict
        {"rust_layer": "palette", "attention": True, "generator": "shared"},
        {"rust_layer": "oil", "attention": True},
    ):
        with pytest.raises(ConfigError):
            replace(config, **bad)


def test_attention_regularisers_add_their_weighted_terms(data: Path, tmp_path: Path) -> None:
    images, _ = load_levels(data, 32)
    totals = {}
    for name, changes in {
        "plain": {},
        "regularised": {"attention_tv": 2.0, "attention_sparsity": 3.0, "attention_binary": 5.0},
    }.items():
        torch.manual_seed(0)
        config = tiny(data, tmp_path / name, attention=True, **changes)
        totals[name] = GanTrainer(config, images, CPU).train_step()
    plain, regularised = totals["plain"], totals["regularised"]
    rusty = ("mild", "moderate", "severe")
    added = sum(
        2.0 * regularised[f"attention_tv_{level}"]
        + 3.0 * regularised[f"attention_mean_{level}"]
        + 5.0 * regularised[f"attention_binary_{level}"]
        for level in rusty
    )
    # m (1 - m) is at most 1/4, and a fresh map (~0.5 everywhere) is close to it
    assert all(0.2 < regularised[f"attention_binary_{level}"] <= 0.25 for level in rusty)
    assert added > 0
    assert regularised["gen_total"] - plain["gen_total"] == pytest.approx(added, rel=1e-4)
    assert all(0 <= regularised[f"attention_mean_{level}"] <= 1 for level in rusty)
    assert "attention_tv_mild" not in plain


def test_r1_spectral_and_multiscale_discriminators_train(data: Path, tmp_path: Path) -> None:
    images, _ = load_levels(data, 64)
    for name, changes in {
        "r1": {"r1_weight": 1.0},
        "spectral": {"discriminator_norm": "spectral", "discriminator": "patch"},
        "multiscale": {"discriminator": "multiscale"},
    }.items():
        torch.manual_seed(0)
        trainer = GanTrainer(tiny(data, tmp_path / name, image_size=64, **changes), images, CPU)
        before = {k: v.clone() for k, v in trainer.discriminators.state_dict().items()}
        losses = trainer.train_step()
        after = trainer.discriminators.state_dict()
        assert any(not torch.equal(before[k], after[k]) for k in before), name
        assert all(np.isfinite(v) for v in losses.values()), name
        if name == "r1":
            assert all(losses[f"r1_{level}"] > 0 for level in ("none", "mild", "moderate", "severe"))
            penalties = sum(0.5 * losses[f"r1_{level}"] for level in ("none", "mild", "moderate", "severe"))
            judged = sum(losses[f"disc_{level}"] for level in ("none", "mild", "moderate", "severe"))
            assert losses["disc_total"] == pytest.approx(judged + penalties, rel=1e-4)


def test_patch_nce_rewards_keeping_each_patch() -> None:
    from corrode.gan.losses import patch_nce

    torch.manual_seed(0)
    seen = torch.randn(2, 16, 8, 8)
    kept = patch_nce(seen, seen, patches=32, temperature=0.05)
    shuffled = patch_nce(seen.flip(-1).flip(-2), seen, patches=32, temperature=0.05)
    assert float(kept) < 0.05 < float(shuffled)
    flat = torch.ones(1, 4, 4, 4)  # every patch alike: no better than chance
    assert float(patch_nce(flat, flat, patches=16)) == pytest.approx(math.log(16), rel=1e-4)
    where = torch.zeros(1, 1, 4, 4, dtype=torch.bool)
    where[..., :2, :2] = True  # only 4 positions allowed: 4 of 5 drawn patches come from them
    assert float(patch_nce(flat, flat, patches=5, where=where)) == pytest.approx(math.log(5), rel=1e-4)


def test_nce_weight_adds_patch_nce_per_level(data: Path, tmp_path: Path) -> None:
    images, _ = load_levels(data, 32)
    torch.manual_seed(0)
    trainer = GanTrainer(tiny(data, tmp_path / "nce", nce_weight=1.0, cycle_weight=0.0), images, CPU)
    before = {k: v.clone() for k, v in trainer.generators.state_dict().items()}
    losses = trainer.train_step()
    assert all(0 < losses[f"nce_{level}"] < 10 for level in ("mild", "moderate", "severe"))
    changed = [
        not torch.equal(before[k], v)
        for k, v in trainer.generators.state_dict().items()
        if k.startswith("translators.none_to_mild")
    ]
    assert any(changed)
    with pytest.raises(ConfigError):
        tiny(data, tmp_path, nce_weight=-1.0)


def test_level_critic_reads_the_car_share_and_trains_with_the_discriminators(
    data: Path, tmp_path: Path
) -> None:
    from corrode.models.cyclegan import LevelCritic

    torch.manual_seed(0)
    critic = LevelCritic(channels=4).eval()
    with torch.no_grad():
        # The car's cells alone are averaged: more black background around the same car changes nothing.
        car = torch.rand(1, 3, 16, 16) * 2 - 1
        # (The canvases are wider than the critic's receptive field around the car, ~40 px.)
        small = torch.full((1, 3, 64, 64), -1.0)
        large = torch.full((1, 3, 128, 128), -1.0)
        small[..., 24:40, 24:40], large[..., 56:72, 56:72] = car, car
        assert torch.allclose(critic(small), critic(large), atol=1e-5)
        assert torch.isfinite(critic(torch.full((1, 3, 32, 32), -1.0))).all()

    images, _ = load_levels(data, 32)
    trainer = GanTrainer(tiny(data, tmp_path / "critic", level_weight=1.0), images, CPU)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    losses = trainer.train_step()
    after = trainer.model.state_dict()
    assert math.isclose(losses["level_disc"], losses["level_disc"]) and 0 < losses["level_disc"] < 10
    assert 0 < losses["level_gen"] < 10
    for prefix in ("discriminators.critic.", "generators.translators.none_to_mild"):
        assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith(prefix)), prefix
    # Off by default: no critic, and the saved generators never carry one.
    assert GanTrainer(tiny(data, tmp_path / "plain"), images, CPU).discriminators.critic is None
    assert not any(key.startswith("critic") for key in trainer.exported.state_dict())
    with pytest.raises(ConfigError):
        tiny(data, tmp_path, level_weight=-1.0)


def test_level_critic_car_max_pooling_sees_one_rusty_cell(data: Path, tmp_path: Path) -> None:
    from corrode.models.cyclegan import LevelCritic

    torch.manual_seed(0)
    critic = LevelCritic(channels=4, pooling="car_max").eval()
    assert critic.head.in_features == 2 * 16  # the car average and the car maximum of 16 features
    with torch.no_grad():
        car = torch.full((1, 3, 64, 64), -1.0)
        car[..., 8:56, 8:56] = 0.2
        spot = car.clone()
        spot[..., 30:34, 30:34] = torch.tensor([0.6, -0.2, -0.7]).view(1, 3, 1, 1)  # one small patch
        features = {}
        for name, image in (("clean", car), ("spot", spot)):
            maps = critic.layers(image)
            features[name] = maps.amax((2, 3))
        # The maximum moves by more than the average does, which the patch changes in a few cells only.
        mean_moved = (critic.layers(spot).mean((2, 3)) - critic.layers(car).mean((2, 3))).abs().max()
        max_moved = (features["spot"] - features["clean"]).abs().max()
        assert max_moved > 2 * mean_moved
        # No car: finite logits (no maximum over an empty set).
        assert torch.isfinite(critic(torch.full((1, 3, 32, 32), -1.0))).all()
        # The background's cells never win the maximum: a car on a bigger canvas reads the same.
        small = torch.full((1, 3, 64, 64), -1.0)
        large = torch.full((1, 3, 128, 128), -1.0)
        patch = torch.rand(1, 3, 16, 16) * 2 - 1
        small[..., 24:40, 24:40], large[..., 56:72, 56:72] = patch, patch
        assert torch.allclose(critic(small), critic(large), atol=1e-5)
    images, _ = load_levels(data, 32)
    trainer = GanTrainer(
        tiny(data, tmp_path / "max", level_weight=1.0, critic_pooling="car_max"), images, CPU
    )
    assert trainer.discriminators.critic.pooling == "car_max"
    assert 0 < trainer.train_step()["level_disc"] < 10
    with pytest.raises(ConfigError):
        tiny(data, tmp_path, critic_pooling="max")


def test_level_critic_learns_from_its_own_batch_at_its_own_rate(data: Path, tmp_path: Path) -> None:
    images, _ = load_levels(data, 32)
    config = tiny(data, tmp_path / "batch", level_weight=1.0, critic_batch=2, critic_lr_factor=10.0)
    trainer = GanTrainer(config, images, CPU)
    seen: list[int] = []
    trainer.discriminators.critic.register_forward_hook(
        lambda module, inputs, output: seen.append(len(inputs[0]))
    )
    trainer.train_step()
    batch = config.batch_size
    # The generators' pass reads 6 translations per car; the critic's own pass 4 levels x (batch + 2).
    assert seen == [6 * batch, 4 * (batch + 2)]
    plain, critic = trainer.optimizer_d.param_groups
    assert math.isclose(critic["lr"], 10 * plain["lr"]) and plain["lr"] > 0
    assert {id(p) for p in critic["params"]} == {id(p) for p in trainer.discriminators.critic.parameters()}
    # Off (the default): one parameter group and no samplers of the critic's own, as before.
    default = GanTrainer(tiny(data, tmp_path / "plain", level_weight=1.0), images, CPU)
    assert len(default.optimizer_d.param_groups) == 1 and not default.critic_samplers
    for bad in ({"critic_batch": -1}, {"critic_lr_factor": 0.0}):
        with pytest.raises(ConfigError):
            tiny(data, tmp_path, **bad)


def test_critic_warm_up_trains_the_critic_alone_before_the_first_step(data: Path, tmp_path: Path) -> None:
    images, _ = load_levels(data, 32)
    # A learning rate at which 40 steps of a 4-channel critic show.
    config = tiny(
        data, tmp_path / "warm", level_weight=1.0, critic_batch=1, critic_warmup=40, learning_rate=5e-3
    )
    trainer = GanTrainer(config, images, CPU)
    critic = trainer.discriminators.critic

    def critic_loss() -> float:
        reads = torch.cat([images[level].float() / 127.5 - 1 for level in trainer.levels])
        with torch.no_grad():
            logits = critic(reads)
        counts = [len(images[level]) for level in trainer.levels]
        targets = torch.cat([torch.full((n,), i) for i, n in enumerate(counts)])
        return float(torch.nn.functional.cross_entropy(logits, targets))

    before = critic_loss()
    generators = {k: v.clone() for k, v in trainer.generators.state_dict().items()}
    patch = {
        k: v.clone() for k, v in trainer.discriminators.state_dict().items() if not k.startswith("critic")
    }
    trainer.warm_up_critic(40)
    assert trainer.step == 0
    assert critic_loss() < 0.8 * before  # it learnt to read the real cars' levels
    assert all(torch.equal(v, trainer.generators.state_dict()[k]) for k, v in generators.items())
    assert all(torch.equal(v, trainer.discriminators.state_dict()[k]) for k, v in patch.items())
    # train_step warms up on the first step only: the critic reads 4 x (1 + 1) real cars per warm-up step.
    seen: list[int] = []
    fresh = GanTrainer(config, images, CPU)
    fresh.discriminators.critic.register_forward_hook(lambda m, inputs, out: seen.append(len(inputs[0])))
    fresh.train_step()
    fresh.train_step()
    assert seen.count(8) == 40 + 2 and len(seen) == 40 + 4
    for bad in ({"critic_warmup": -1}, {"critic_warmup": 5, "level_weight": 0.0}):
        with pytest.raises(ConfigError):
            tiny(data, tmp_path, **bad)


def test_critic_augment_shifts_only_the_real_images_the_critic_learns_from(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    images, _ = load_levels(data, 32)
    config = tiny(data, tmp_path / "shift", level_weight=1.0, critic_augment="translation")
    trainer = GanTrainer(config, images, CPU)
    seen: list[torch.Tensor] = []
    trainer.discriminators.critic.register_forward_hook(
        lambda m, inputs, out: seen.append(inputs[0].detach())
    )
    real = {level: trainer._batch(level) for level in trainer.levels}
    torch.manual_seed(3)
    shifted = trainer._critic_reads(real)
    plain = torch.cat([real[level] for level in trainer.levels])
    assert shifted.shape == plain.shape and not torch.equal(shifted, plain)
    # A shift moves pixels, it does not recolour them: every value read is one of the image's or -1.
    for got, original in zip(shifted, plain, strict=True):
        values = set(original.flatten().tolist()) | {-1.0}
        assert set(got.flatten().tolist()) <= values
    # In a step the augmentation runs once, on the critic's 4 real images; the 6 translations the
    # generators are judged by (the critic's first read) are not shifted.
    import corrode.gan.diffaugment as diffaugment

    calls: list[int] = []
    original = diffaugment.diff_augment
    monkeypatch.setattr(
        diffaugment, "diff_augment", lambda x, policy: calls.append(len(x)) or original(x, policy)
    )
    trainer.train_step()
    assert calls == [4 * config.batch_size]
    assert [len(x) for x in seen] == [6 * config.batch_size, 4 * config.batch_size]
    with pytest.raises(ConfigError):
        tiny(data, tmp_path, critic_augment="rotate")


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"critic_batch": 2, "critic_lr_factor": 5.0},
        {"critic_batch": 1, "critic_warmup": 5, "critic_augment": "translation"},
    ],
)
def test_level_critic_resumes_exactly(data: Path, tmp_path: Path, extra: dict) -> None:
    options = {"level_weight": 1.0, "checkpoint_every": 3, **extra}
    whole = train_gan(tiny(data, tmp_path / "whole", **options))

    def interrupt(step: int, total: int, losses: dict) -> None:
        if step == 4:
            raise KeyboardInterrupt

    config = tiny(data, tmp_path / "cut", **options)
    with pytest.raises(Interrupted):
        train_gan(config, progress=interrupt)
    train_gan(config, resume=tmp_path / "cut")
    expected = MetricsLog(whole / "metrics.csv").rows()
    got = MetricsLog(tmp_path / "cut" / "metrics.csv").rows()
    for mine, theirs in zip(got, expected, strict=True):
        assert math.isclose(float(mine["level_disc"]), float(theirs["level_disc"]), rel_tol=1e-5)
        assert math.isclose(float(mine["level_gen"]), float(theirs["level_gen"]), rel_tol=1e-5)

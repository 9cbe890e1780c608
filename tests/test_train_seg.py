"""corrode.train_seg: tiny runs, resume, Ctrl-C, encoder weights, metrics, bad inputs, CLI, DDP."""

import json
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from corrode import runs
from corrode.checkpoint import load_state, read_model
from corrode.cli import app
from corrode.config import load_config, save_config
from corrode.datasets import DatasetError
from corrode.errors import ConfigError, FileError, UsageError
from corrode.models.encoder_weights import EncoderWeightsError, load_encoder_weights
from corrode.models.unet import CarSegmenter, SegmenterConfig
from corrode.train_seg import (
    TrainSegConfig,
    batch_totals,
    epoch_order,
    split_indices,
    summarize,
    train_seg,
)
from corrode.training import Interrupted, Reporter

TINY_MODEL = {"width": 0.25, "decoder_channels": (8, 8, 8, 8), "size": 32}


def make_pairs(root: Path, count: int = 10, size: int = 40, seed: int = 0) -> Path:
    """images/ + masks/ with a bright ellipse (the "car") on a noisy dark background."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for index in range(count):
        mask = np.zeros((size, size), np.uint8)
        centre = tuple(int(v) for v in rng.integers(size // 3, 2 * size // 3, 2))
        axes = (int(rng.integers(size // 6, size // 3)), int(rng.integers(size // 8, size // 4)))
        cv2.ellipse(mask, centre, axes, 0, 0, 360, 255, -1)
        image = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
        image[mask > 0] = 200
        cv2.imwrite(str(root / "images" / f"car{index:02d}.png"), image)
        cv2.imwrite(str(root / "masks" / f"car{index:02d}.png"), mask)
    return root


@pytest.fixture(autouse=True)
def one_thread():
    # Tiny models: one thread avoids OpenMP spin overhead on shared cores.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def pairs(tmp_path_factory) -> Path:
    return make_pairs(tmp_path_factory.mktemp("pairs") / "data")


@pytest.fixture(scope="module")
def straight(pairs: Path, tmp_path_factory) -> Path:
    """Three epochs in one go: what resumed runs must reproduce exactly."""
    return train_seg(tiny_config(pairs, tmp_path_factory.mktemp("straight") / "run", epochs=3))


def tiny_config(data: Path, out: Path, **values) -> TrainSegConfig:
    base = TrainSegConfig(
        data=data, out=out, epochs=2, batch_size=4, val_fraction=0.2, device="cpu", precision="fp32",
        encoder_weights="none", **TINY_MODEL,
    )  # fmt: skip
    return replace(base, **values)


def metric_rows(run: Path) -> list[dict[str, str]]:
    return [
        {k: v for k, v in row.items() if k != "seconds"} for row in runs.MetricsLog(run / runs.METRICS).rows()
    ]


def test_tiny_run_writes_a_complete_run_folder(pairs: Path, tmp_path: Path) -> None:
    lines: list[str] = []
    run = train_seg(tiny_config(pairs, tmp_path / "run"), log=lines.append)
    for name in (runs.CONFIG, runs.WEIGHTS, runs.BEST_WEIGHTS, runs.STATE, runs.METRICS, "curves.png"):
        assert (run / name).is_file() and (run / name).stat().st_size > 0, name
    rows = metric_rows(run)
    assert [row["epoch"] for row in rows] == ["1", "2"]
    for row in rows:
        for split in ("train", "val"):
            for measure in ("accuracy", "dice", "iou"):
                assert 0.0 <= float(row[f"{split}_{measure}"]) <= 1.0
            assert float(row[f"{split}_loss"]) > 0
    config, state = read_model(run / runs.WEIGHTS, kind="seg")
    assert SegmenterConfig(
        **{**config, "decoder_channels": tuple(config["decoder_channels"])}
    ) == SegmenterConfig(**TINY_MODEL)
    assert load_config(TrainSegConfig, run / runs.CONFIG) == tiny_config(pairs, tmp_path / "run")
    assert "resume" not in json.loads((run / runs.CONFIG).read_text())
    assert any(line.startswith("epoch 2/2") and "val loss" in line for line in lines)
    assert any("random initialisation" in line for line in lines)
    assert cv2.imread(str(run / "curves.png")) is not None
    # The run folder is what the inference API and the other commands take.
    from corrode.segment import Segmenter

    probability = Segmenter.load(run, device="cpu").probabilities(np.zeros((50, 30, 3), np.uint8))
    assert probability.shape == (50, 30) and 0 <= probability.min() <= probability.max() <= 1


@pytest.mark.slow  # three epochs straight and again in parts
def test_two_epochs_then_resume_equals_three_straight(pairs: Path, straight: Path, tmp_path: Path) -> None:
    first = train_seg(tiny_config(pairs, tmp_path / "resumed", epochs=2))
    resumed = train_seg(tiny_config(pairs, tmp_path / "ignored", epochs=3), resume=first)
    assert resumed == first
    assert metric_rows(straight) == metric_rows(resumed)
    _, straight_weights = read_model(straight / runs.WEIGHTS, kind="seg")
    _, resumed_weights = read_model(resumed / runs.WEIGHTS, kind="seg")
    for key, value in straight_weights.items():
        torch.testing.assert_close(resumed_weights[key], value, rtol=0, atol=0)
    assert load_state(resumed / runs.STATE)["epoch"] == 3


class SignalAt(Reporter):
    """Sends this process `signum` at the n-th finished batch, as SLURM or Ctrl-C would."""

    def __init__(self, at: int, signum: int = signal.SIGTERM, lines: list[str] | None = None) -> None:
        super().__init__(note=lines.append if lines is not None else None)
        self.at, self.signum, self.advances = at, signum, 0

    def advance(self, name: str, completed: int | None = None, description: str | None = None) -> None:
        if completed is None and description is None:
            self.advances += 1
            if self.advances == self.at:
                os.kill(os.getpid(), self.signum)


@pytest.mark.slow  # three epochs straight and again in parts
def test_sigterm_mid_epoch_then_resume_equals_straight(pairs: Path, straight: Path, tmp_path: Path) -> None:
    # 8 training pairs in batches of 4, 2 validation in one batch: 3 advances per epoch, so the 4th
    # is the first training batch of epoch 2.
    lines: list[str] = []
    config = tiny_config(pairs, tmp_path / "run", epochs=3)
    with pytest.raises(Interrupted) as info:
        train_seg(config, SignalAt(4, lines=lines))
    assert info.value.exit_code == 143
    state = load_state(tmp_path / "run" / runs.STATE)
    assert (state["epoch"], state["batch"]) == (1, 1)  # the finished batch is kept
    assert any("SIGTERM in epoch 2 after batch 1" in line and "--resume" in line for line in lines)
    train_seg(config, resume=tmp_path / "run")
    assert metric_rows(tmp_path / "run") == metric_rows(straight)


def test_ctrl_c_after_the_first_batch_still_resumes(pairs: Path, tmp_path: Path) -> None:
    config = tiny_config(pairs, tmp_path / "run", epochs=1)
    with pytest.raises(Interrupted) as info:
        train_seg(config, SignalAt(1, signal.SIGINT))
    assert info.value.exit_code == 130
    assert load_state(tmp_path / "run" / runs.STATE)["batch"] == 1
    assert not (tmp_path / "run" / runs.WEIGHTS).exists()
    train_seg(config, resume=tmp_path / "run")
    assert [row["epoch"] for row in metric_rows(tmp_path / "run")] == ["1"]


def test_resume_refuses_a_changed_batch_size_naming_both_values(pairs: Path, tmp_path: Path) -> None:
    run = train_seg(tiny_config(pairs, tmp_path / "run", epochs=1))
    with pytest.raises(ConfigError, match="batch_size 4 -> 32"):
        train_seg(tiny_config(pairs, run, epochs=2, batch_size=32), resume=run)
    result = CliRunner().invoke(
        app, ["train-seg", "--resume", str(run), "--epochs", "2", "--batch-size", "32"]
    )
    assert result.exit_code == 2 and "batch_size 4 -> 32" in result.output


def test_bad_pairs_are_skipped_with_one_line_each(pairs: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(pairs, data)  # the module's pairs stay whole for the other tests
    (data / "images" / "car00.png").write_bytes(b"not an image")
    cv2.imwrite(str(data / "masks" / "car01.png"), np.zeros((20, 20), np.uint8))
    whole = (data / "images" / "car02.png").read_bytes()
    (data / "images" / "car02.png").write_bytes(whole[: len(whole) // 2])  # header fine, pixels cut short
    lines: list[str] = []
    train_seg(tiny_config(data, tmp_path / "run", epochs=1), log=lines.append)
    skipped = [line for line in lines if line.startswith("skipped")]
    assert len(skipped) == 3
    assert "car00.png" in skipped[0] and "car01.png" in skipped[1] and "20x20" in skipped[1]
    assert "car02.png" in skipped[2] and "truncated" in skipped[2]
    assert any(line.startswith("7 pairs") for line in lines)


def test_refusals(pairs: Path, tmp_path: Path) -> None:
    with pytest.raises(DatasetError):
        train_seg(tiny_config(tmp_path / "nothing", tmp_path / "a"))
    empty = tmp_path / "empty"
    (empty / "images").mkdir(parents=True)
    (empty / "masks").mkdir()
    (empty / "images" / "x.png").write_bytes(b"junk")
    (empty / "masks" / "x.png").write_bytes(b"junk")
    with pytest.raises(DatasetError, match="no usable"):
        train_seg(tiny_config(empty, tmp_path / "b"))
    run = train_seg(tiny_config(pairs, tmp_path / "run", epochs=1))
    with pytest.raises(UsageError, match="--resume"):
        train_seg(tiny_config(pairs, run))
    with pytest.raises(UsageError, match="already trained 1 epochs"):
        train_seg(tiny_config(pairs, run, epochs=1), resume=run)
    with pytest.raises(ConfigError, match="width"):
        train_seg(tiny_config(pairs, run, epochs=2, width=0.5), resume=run)
    with pytest.raises(ConfigError):
        tiny_config(pairs, run, val_fraction=1.0)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    save_config(tiny_config(pairs, foreign, epochs=5), foreign / runs.CONFIG)
    torch.save({"epoch": 3}, foreign / runs.STATE)
    with pytest.raises(FileError, match="not a train-seg training state"):
        train_seg(tiny_config(pairs, foreign, epochs=5), resume=foreign)


# --- encoder weights ---------------------------------------------------------------------------------


def torchvision_state(width: float) -> dict[str, torch.Tensor]:
    from torchvision.models import mobilenet_v2

    torch.manual_seed(1)
    return mobilenet_v2(width_mult=width).state_dict()


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_encoder_weights_from_a_local_file(tmp_path: Path, suffix: str) -> None:
    state = torchvision_state(0.25)
    path = tmp_path / f"encoder{suffix}"
    if suffix == ".pth":
        torch.save(state, path)
    else:
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    model = CarSegmenter(SegmenterConfig(**TINY_MODEL))
    line = load_encoder_weights(model, str(path))
    assert str(path) in line
    torch.testing.assert_close(model.encoder[0][0].weight, state["features.0.0.weight"])
    torch.testing.assert_close(model.encoder[17].conv[2].weight, state["features.17.conv.2.weight"])


def test_encoder_weights_refused_with_the_reason(tmp_path: Path) -> None:
    model = CarSegmenter(SegmenterConfig(**TINY_MODEL))
    wrong_width = tmp_path / "wide.pth"
    torch.save(torchvision_state(0.5), wrong_width)
    with pytest.raises(FileError, match="width 0.25"):
        load_encoder_weights(model, str(wrong_width))
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"\x80\x04 not a checkpoint")
    with pytest.raises(FileError, match="corrupt.pth"):
        load_encoder_weights(model, str(corrupt))
    other = tmp_path / "other.pth"
    torch.save({"linear.weight": torch.zeros(2, 2)}, other)
    with pytest.raises(FileError, match="no MobileNetV2 encoder"):
        load_encoder_weights(model, str(other))
    with pytest.raises(FileError, match="no such"):
        load_encoder_weights(model, str(tmp_path / "missing.pth"))


def test_imagenet_from_cache_or_random_never_downloading(tmp_path: Path, monkeypatch) -> None:
    import torchvision.models._api as api

    def no_network(*args, **kwargs):
        raise OSError("<urlopen error [Errno -3] Temporary failure in name resolution>")

    monkeypatch.setattr(api.WeightsEnum, "get_state_dict", no_network)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    model = CarSegmenter(SegmenterConfig(size=64))
    assert "random initialisation" in load_encoder_weights(model, "auto")
    with pytest.raises(EncoderWeightsError) as caught:
        load_encoder_weights(model, "imagenet")
    message = str(caught.value)
    assert "mobilenet_v2-" in message and str(tmp_path / "hub" / "checkpoints") in message
    # Placing the file where the message says makes `auto` (and `imagenet`) use it.
    state = torchvision_state(1.0)
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    name = message.split(str(cache) + os.sep)[1].split()[0]
    torch.save(state, cache / name)
    assert "ImageNet" in load_encoder_weights(model, "auto")
    torch.testing.assert_close(model.encoder[14].conv[0][0].weight, state["features.14.conv.0.0.weight"])
    tiny = CarSegmenter(SegmenterConfig(**TINY_MODEL))
    assert "only for width 1.0" in load_encoder_weights(tiny, "auto")
    with pytest.raises(ConfigError):
        load_encoder_weights(tiny, "imagenet")


# --- metrics and splits ------------------------------------------------------------------------------


def test_metrics_known_answer() -> None:
    targets = torch.tensor([[[1, 1, 0, 0]]])
    # Predictions: car, background, car, background -> tp 1, fn 1, fp 1, tn 1.
    logits = torch.tensor([[[[0.0, 1.0, 0.0, 1.0]], [[1.0, 0.0, 1.0, 0.0]]]])
    summary = summarize(batch_totals(logits, targets, torch.tensor(0.5)))
    assert summary == pytest.approx({"loss": 0.5, "accuracy": 0.5, "dice": 0.5, "iou": 1 / 3})
    empty = summarize(
        batch_totals(torch.tensor([[[[1.0]], [[0.0]]]]), torch.tensor([[[0]]]), torch.tensor(0.1))
    )
    assert empty["dice"] == 1.0 and empty["iou"] == 1.0 and empty["accuracy"] == 1.0


def test_split_is_seeded_disjoint_and_complete() -> None:
    stems = [f"photo{i}" for i in range(20)]
    train, val = split_indices(stems, 0.25, seed=3)
    assert len(val) == 5 and sorted(train + val) == list(range(20))
    assert split_indices(stems, 0.25, seed=3) == (train, val)
    assert split_indices(stems, 0.25, seed=4) != (train, val)
    assert split_indices(stems[:3], 0.01, seed=0)[1] != []  # at least one validation pair when asked
    assert split_indices(stems[:5], 0.0, seed=0) == ([0, 1, 2, 3, 4], [])


def test_split_keeps_each_carvana_car_on_one_side() -> None:
    stems = [f"{car}_{view:02d}" for car in ("0a1b", "0c2d", "1e3f", "2a4b", "9f9f") for view in range(1, 5)]
    for seed in range(5):
        train, val = split_indices(stems, 0.2, seed)
        assert len(val) == 4 and sorted(train + val) == list(range(20))
        assert {stems[i][:4] for i in train}.isdisjoint({stems[i][:4] for i in val})
    # One car only: split its views rather than leave validation empty.
    assert len(split_indices(stems[:4], 0.25, 0)[1]) == 1


def test_epoch_order_gives_every_rank_the_same_count() -> None:
    from corrode.distributed import DistContext

    indices = list(range(7))
    shares = [epoch_order(indices, 0, 1, DistContext(r, 2, r, torch.device("cpu"))) for r in range(2)]
    assert len(shares[0]) == len(shares[1]) == 4
    assert set(shares[0] + shares[1]) == set(indices)
    assert epoch_order(indices, 0, 1, DistContext(0, 1, 0, torch.device("cpu"))) != epoch_order(
        indices, 0, 2, DistContext(0, 1, 0, torch.device("cpu"))
    )


# --- CLI ---------------------------------------------------------------------------------------------

TINY_OPTIONS = [
    "--size", "32", "--width", "0.25", "--decoder-channels", "8,8,8,8", "--batch-size", "4",
    "--val-fraction", "0.2", "--device", "cpu", "--precision", "fp32", "--encoder-weights", "none",
]  # fmt: skip


def test_cli_trains_resumes_and_summarises(pairs: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "run"
    result = runner.invoke(app, ["train-seg", str(pairs), "--out", str(out), "--epochs", "1", *TINY_OPTIONS])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["train-seg", "--resume", str(out), "--epochs", "2", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["epochs"] == 2 and summary["last"]["epoch"] == "2" and summary["run"] == str(out)
    assert load_config(TrainSegConfig, out / runs.CONFIG).epochs == 2


def test_cli_config_file_is_the_base_and_options_override(pairs: Path, tmp_path: Path) -> None:
    save_config(tiny_config(pairs, tmp_path / "from-file", epochs=5), tmp_path / "config.json")
    result = CliRunner().invoke(
        app, ["train-seg", "--config", str(tmp_path / "config.json"), "--epochs", "1"]
    )
    assert result.exit_code == 0, result.output
    saved = load_config(TrainSegConfig, tmp_path / "from-file" / runs.CONFIG)
    assert saved.epochs == 1 and saved.width == 0.25
    (tmp_path / "bad.json").write_text('{"epochs": 2, "colour": "red"}')
    result = CliRunner().invoke(app, ["train-seg", str(pairs), "--config", str(tmp_path / "bad.json")])
    assert result.exit_code == 2 and "colour" in result.output


@pytest.mark.parametrize(
    "arguments",
    [
        ["--size", "100"],
        ["--decoder-channels", "8,x,8,8"],
        ["--device", "tpu"],
        ["--encoder-weights", "/no/such/file.pth"],
    ],
)
def test_cli_bad_options_exit_with_one_line(pairs: Path, tmp_path: Path, arguments: list[str]) -> None:
    result = CliRunner().invoke(
        app, ["train-seg", str(pairs), "--out", str(tmp_path / "run"), *TINY_OPTIONS, *arguments]
    )
    assert result.exit_code in (1, 2)
    # --device tpu is refused by click itself, which lists the choices
    assert "error" in result.output.lower() and "Traceback" not in result.output
    assert not (tmp_path / "run" / runs.WEIGHTS).exists()


def test_cli_without_data_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["train-seg", "--out", str(tmp_path / "run")])
    assert result.exit_code == 2 and "DATA" in result.output


@pytest.mark.slow
def test_torchrun_two_gloo_processes(pairs: Path, tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "-m", "corrode", "train-seg", str(pairs), "--out", str(out), "--epochs", "2", *TINY_OPTIONS,
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = metric_rows(out)
    assert [row["epoch"] for row in rows] == ["1", "2"]
    assert result.stderr.count("epoch 2/2") == 1, result.stderr[-3000:]  # only rank 0 reports
    read_model(out / runs.WEIGHTS, kind="seg")

"""corrode.training through every trainer's CLI: TensorBoard events equal metrics.csv, a full disk during
each checkpoint write, the temporary files a kill leaves, and the trainer options' choices against the
library's names."""

from __future__ import annotations

import errno
import hashlib
import math
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from corrode import runs
from corrode.cli import app

runner = CliRunner()
THREADS = ["--threads", "1"]


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# --- one tiny run of each trainer, as command lines ---------------------------------------------------


def seg_data(root: Path) -> Path:
    from test_train_seg import make_pairs

    return make_pairs(root / "pairs", count=10)


def classifier_data(root: Path) -> Path:
    from test_classifier import make_levels

    return make_levels(root / "levels", per_level=(3, 3, 3, 3))


def gan_data(root: Path) -> Path:
    from test_train_gan import make_levels

    return make_levels(root / "gan", {"none": 3, "mild": 2, "moderate": 2, "severe": 2})


def seg_args(data: Path, run: Path, epochs: int) -> list[str]:
    from test_train_seg import TINY_OPTIONS

    return ["train-seg", str(data), "--out", str(run), "--epochs", str(epochs), *TINY_OPTIONS, *THREADS]


def classifier_args(data: Path, run: Path, epochs: int) -> list[str]:
    return [
        "train-classifier", str(data), "--out", str(run), "--epochs", str(epochs), "--size", "32",
        "--width", "0.25", "--batch-size", "4", "--encoder-weights", "none", "--device", "cpu", *THREADS,
    ]  # fmt: skip


def gan_args(data: Path, run: Path, epochs: int, checkpoint_every: int = 0) -> list[str]:
    return [
        "train-gan", str(data), "--out", str(run), "--epochs", str(epochs), "--decay-epochs", "0",
        "--size", "32", "--base-channels", "4", "--residual-blocks", "1", "--discriminator-channels", "4",
        "--pool-size", "3", "--samples", "1", "--device", "cpu", "--checkpoint-every",
        str(checkpoint_every), *THREADS,
    ]  # fmt: skip


# name -> (make data, command line, metrics.csv's step column)
TRAINERS: dict[str, tuple[Callable[[Path], Path], Callable[..., list[str]], str]] = {
    "train-seg": (seg_data, seg_args, "epoch"),
    "train-classifier": (classifier_data, classifier_args, "epoch"),
    "train-gan": (gan_data, gan_args, "step"),
}


def invoke(args: list[str]):
    return runner.invoke(app, ["--quiet", *args])


def stray_temporaries(folder: Path) -> list[str]:
    """What corrode.images.atomic_path leaves when a write is cut short: `.<stem>.<random>.part<suffix>`."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if ".part" in p.name)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def metric_rows(run: Path) -> list[dict[str, str]]:
    return runs.MetricsLog(run / runs.METRICS).rows()


def without_time(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


def _number(text: str | None) -> float | None:
    try:
        value = float(text or "")
    except ValueError:
        return None
    return value if math.isfinite(value) else None


# --- TensorBoard ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(TRAINERS))
def test_tensorboard_events_hold_the_metrics_csv_values(name: str, tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    make_data, make_args, step_column = TRAINERS[name]
    run = tmp_path / "run"
    result = invoke([*make_args(make_data(tmp_path), run, 2), "--tensorboard"])
    assert result.exit_code == 0, result.output
    assert list(run.glob("events.out.tfevents.*")), sorted(p.name for p in run.iterdir())
    events = EventAccumulator(str(run), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    rows = metric_rows(run)
    columns = [c for c in rows[0] if c not in ("step", "epoch")]
    expected: dict[str, list[tuple[int, float]]] = {}
    for column in columns:
        for row in rows:
            number = _number(row.get(column))
            if number is not None:  # text columns (the confusion matrix) and NaN are not scalars
                expected.setdefault(column, []).append((int(row[step_column]), number))
    assert set(events.Tags()["scalars"]) == set(expected)
    for column, series in expected.items():
        logged = [(event.step, event.value) for event in events.Scalars(column)]
        assert [s for s, _ in logged] == [s for s, _ in series], column
        # metrics.csv holds 6 significant digits; the events hold float32
        for (_, got), (_, want) in zip(logged, series, strict=True):
            assert got == pytest.approx(want, rel=1e-5, abs=1e-7), column
    if name == "train-gan":
        images = events.Images("samples")
        assert len(images) == 2  # one sample grid per epoch
        from io import BytesIO

        from PIL import Image

        grid = Image.open(BytesIO(images[-1].encoded_image_string))
        sheet = Image.open(sorted((run / "samples").iterdir())[-1])
        assert grid.size == sheet.size
    else:
        assert events.Tags()["images"] == []


def test_tensorboard_holds_each_step_once_after_a_failed_checkpoint_and_resume(
    tmp_path: Path, monkeypatch
) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    assert invoke([*gan_args(gan_data(tmp_path), run, 1), "--tensorboard"]).exit_code == 0
    with monkeypatch.context() as patch:  # epoch 2 logs steps 4-6, then its state cannot be written
        fail_state(patch)
        assert invoke(["train-gan", "--resume", str(run), "--epochs", "2"]).exit_code == 1
    assert invoke(["train-gan", "--resume", str(run), "--epochs", "2"]).exit_code == 0
    events = EventAccumulator(str(run), size_guidance={"scalars": 0})
    events.Reload()
    logged = [(event.step, event.value) for event in events.Scalars("gen_total")]
    rows = metric_rows(run)
    assert [step for step, _ in logged] == [int(row["step"]) for row in rows] == list(range(1, 7))
    for (_, value), row in zip(logged, rows, strict=True):
        assert value == pytest.approx(float(row["gen_total"]), rel=1e-5)


def test_tensorboard_missing_is_one_line_naming_the_extra(tmp_path: Path, monkeypatch) -> None:
    # A None entry in sys.modules makes `import torch.utils.tensorboard` raise ImportError.
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    run = tmp_path / "run"
    result = invoke([*seg_args(seg_data(tmp_path), run, 1), "--tensorboard"])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "corrode[tensorboard]" in lines[0], result.stderr
    assert not run.exists()  # refused before the run folder is made


# --- a full disk during each checkpoint write -----------------------------------------------------------


def _enospc(path: object) -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


def fail_weights(monkeypatch) -> str:
    import safetensors.torch

    original = safetensors.torch.save_file

    def save_file(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"\0" * 64)  # the disk took a little, then filled up
        raise _enospc(filename)

    monkeypatch.setattr(safetensors.torch, "save_file", save_file)
    assert original is not save_file
    return runs.WEIGHTS


def fail_metrics(monkeypatch) -> str:
    original = os.write

    def write(descriptor: int, data) -> int:
        if os.readlink(f"/proc/self/fd/{descriptor}").endswith(runs.METRICS):
            original(descriptor, bytes(data)[: max(1, len(data) // 2)])
            raise _enospc(runs.METRICS)
        return original(descriptor, data)

    monkeypatch.setattr(os, "write", write)
    return runs.METRICS


def fail_state(monkeypatch) -> str:
    original = torch.save

    def save(obj, f, *args, **kwargs):
        if isinstance(f, str | os.PathLike) and Path(f).name.startswith(".state."):
            Path(f).write_bytes(b"PK\3\4" + b"\0" * 60)
            raise _enospc(f)
        return original(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)
    return runs.STATE


def fail_samples(monkeypatch) -> str:
    from PIL import Image

    original = Image.Image.save

    def save(self, fp, *args, **kwargs):
        if isinstance(fp, str | os.PathLike) and Path(fp).name.startswith(".epoch_"):
            Path(fp).write_bytes(b"\x89PNG\r\n")
            raise _enospc(fp)
        return original(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", save)
    return "samples/epoch_002.png"


FAULTS = {"weights": fail_weights, "metrics": fail_metrics, "state": fail_state, "samples": fail_samples}
CASES = [(name, fault) for name in TRAINERS for fault in FAULTS if fault != "samples" or name == "train-gan"]


@pytest.fixture(scope="module")
def one_epoch_runs(tmp_path_factory) -> dict[str, tuple[Path, list[dict[str, str]]]]:
    """Per trainer: a finished 1-epoch run, and the metrics its `--resume --epochs 2` writes."""
    made = {}
    for name, (make_data, make_args, _) in TRAINERS.items():
        root = tmp_path_factory.mktemp(name)
        result = invoke(make_args(make_data(root), root / "run", 1))
        assert result.exit_code == 0, result.output
        reference = root / "reference"
        shutil.copytree(root / "run", reference)
        result = invoke([name, "--resume", str(reference), "--epochs", "2"])
        assert result.exit_code == 0, result.output
        made[name] = (root / "run", without_time(metric_rows(reference)))
    return made


@pytest.mark.slow
@pytest.mark.parametrize(("name", "fault"), CASES, ids=[f"{n}-{f}" for n, f in CASES])
def test_disk_full_during_a_checkpoint_names_the_file_and_keeps_the_last_one(
    name: str, fault: str, one_epoch_runs, tmp_path: Path, monkeypatch
) -> None:
    finished, resumed_rows = one_epoch_runs[name]
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    state_before = digest(run / runs.STATE)
    rows_before = metric_rows(run)
    with monkeypatch.context() as patch:
        target = FAULTS[fault](patch)
        result = invoke([name, "--resume", str(run), "--epochs", "2"])
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert f"{run / target}: cannot write (no space left on device)" in lines[0]
    assert "Traceback" not in result.output
    assert stray_temporaries(run) == []
    assert digest(run / runs.STATE) == state_before  # the last state is whole and unchanged
    # (model.safetensors may be ahead of it: weights are written first; --resume redoes the epoch)
    rows = metric_rows(run)
    assert rows[: len(rows_before)] == rows_before  # no earlier row lost, no half row left
    result = invoke([name, "--resume", str(run), "--epochs", "2"])
    assert result.exit_code == 0, result.output
    assert without_time(metric_rows(run)) == resumed_rows
    assert stray_temporaries(run) == []


# --- what a kill in the middle of a write leaves ---------------------------------------------------------
# (SIGTERM and kill -9 against `python -m corrode train-*` are tests/test_faults.py's
# test_trainer_resumes_after_a_signal; the in-process SIGTERM/Ctrl-C resumes are in each trainer's tests.)


def test_resume_removes_the_temporary_files_of_an_interrupted_write(tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert invoke(gan_args(gan_data(tmp_path), run, 1)).exit_code == 0
    # atomic_path's names: `.<stem>.<8 random>.part<suffix>`; a user's own dot-file stays.
    stray = [run / ".state.k9x2_abc.part.pt", run / ".metrics.q1w2e3r4.part.csv"]
    stray.append(run / "samples" / ".epoch_002.zz99yy88.part.png")
    for path in stray:
        path.write_bytes(b"half written")
    (run / ".notes.txt").write_text("mine")
    assert len(stray_temporaries(run)) == 3
    result = runner.invoke(app, ["train-gan", "--resume", str(run), "--epochs", "2"])
    assert result.exit_code == 0, result.output
    assert "removed 3 temporary file(s) of an interrupted write" in result.stderr
    assert stray_temporaries(run) == [] and (run / ".notes.txt").read_text() == "mine"
    assert [int(row["step"]) for row in metric_rows(run)] == list(range(1, 7))


# --- the options' choices are the library's names ---------------------------------------------------------


def _choices(command_name: str) -> dict[str, tuple[str, ...]]:
    import typer

    group = typer.main.get_command(app)
    command = group.commands[command_name]  # type: ignore[attr-defined]
    found = {}
    for param in command.params:
        # Click's Choice type, or (Typer with its own parser) the parameter's type descriptor.
        kind = getattr(param, "type", None) or getattr(param, "type_descriptor", None)
        choices = getattr(kind, "choices", None)
        if choices:
            found[param.opts[0]] = tuple(str(getattr(c, "value", c)) for c in choices)
    return found


def test_trainer_choices_are_the_library_constants() -> None:
    from corrode import device, train_classifier, train_gan
    from corrode.gan.losses import GAN_LOSSES, SCHEDULES
    from corrode.models.cyclegan import (
        CRITIC_POOLINGS,
        DISCRIMINATOR_NORMS,
        DISCRIMINATORS,
        GENERATORS,
        RUST_LAYERS,
        UPSAMPLES,
    )

    common = {"--device": device.DEVICES, "--precision": device.PRECISIONS}
    expected = {
        "train-seg": common,
        "train-classifier": {**common, "--balance": train_classifier.BALANCES},
        "train-gan": {
            **common,
            "--generator": GENERATORS,
            "--upsample": UPSAMPLES,
            "--rust-layer": RUST_LAYERS,
            "--critic-pooling": CRITIC_POOLINGS,
            "--discriminator": DISCRIMINATORS,
            "--discriminator-norm": DISCRIMINATOR_NORMS,
            "--gan-loss": GAN_LOSSES,
            "--lambda-schedule": SCHEDULES,
            "--identity-mappings": train_gan.IDENTITY_MAPPINGS,
            "--preset": tuple(train_gan.PRESETS),
        },
    }
    for name, choices in expected.items():
        assert {k: tuple(v) for k, v in _choices(name).items()} == {k: tuple(v) for k, v in choices.items()}


def test_train_classifier_at_32_px_trains_and_refuses_batches_of_one(tmp_path: Path) -> None:
    data = classifier_data(tmp_path)
    run = tmp_path / "run"
    result = invoke([*classifier_args(data, run, 1), "--json"])
    assert result.exit_code == 0, result.output
    assert (run / runs.WEIGHTS).is_file() and len(metric_rows(run)) == 1
    result = invoke([*classifier_args(data, tmp_path / "one", 1), "--batch-size", "1"])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "batch_size 1 at size 32" in lines[0] and "--size 64" in lines[0], (
        result.stderr
    )
    assert "Traceback" not in result.output and not (tmp_path / "one").exists()

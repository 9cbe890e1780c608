"""Faults: a disk that fills up for real (a small tmpfs), kill -9 and SIGTERM mid-run, two writers at once.

The disk-full tests mount a tmpfs, which needs root (CI runs as root); elsewhere they skip, saying why.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import tree_digest
from PIL import Image
from typer.testing import CliRunner

from corrode.cli import app
from corrode.errors import WriteError
from corrode.images import read_image, write_image
from corrode.label.db import LabelDB

runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("one_thread")


# --- a small disk -------------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Callable[[int], Path]]:
    """`small_disk(kib)`: a fresh tmpfs of that size, unmounted after the test."""
    mounted: list[Path] = []

    def mount(kib: int) -> Path:
        point = tmp_path / f"disk{len(mounted)}"
        point.mkdir()
        if os.geteuid() != 0:
            pytest.skip("mounting a small tmpfs needs root (CI runs as root)")
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={kib}k", "tmpfs", str(point)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")
        mounted.append(point)
        return point

    yield mount
    for point in reversed(mounted):
        if subprocess.run(["umount", str(point)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(point)], capture_output=True)


def free_bytes(folder: Path) -> int:
    stats = os.statvfs(folder)
    return stats.f_bavail * stats.f_frsize


def fill(disk: Path, leave: int) -> Path:
    """Fill `disk` with one file so that about `leave` bytes stay free."""
    filler = disk / "filler.bin"
    with filler.open("wb") as handle:
        handle.write(bytes(max(0, free_bytes(disk) - leave)))
    return filler


def leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if ".part" in p.name or p.name.startswith((".download", ".tmp"))]


def photos(folder: Path, count: int, side: int = 64) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        pixels = np.random.default_rng(index).integers(0, 255, (side, side, 3), dtype=np.uint8)
        yy, xx = np.mgrid[0:side, 0:side]
        pixels[(xx - side / 2) ** 2 / 0.1 + (yy - side / 2) ** 2 / 0.06 < side**2] = (200, 50, 40)
        path = folder / f"car{index}.png"
        Image.fromarray(pixels).save(path)
        paths.append(path)
    return paths


def masks_for(sources: list[Path], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for source in sources:
        height, width = read_image(source).shape[:2]
        mask = np.zeros((height, width), np.uint8)
        mask[height // 4 : 3 * height // 4, width // 5 : 4 * width // 5] = 255
        Image.fromarray(mask).save(folder / f"{source.stem}.png")
    return folder


def test_atomic_write_on_a_full_disk_keeps_the_old_file(small_disk) -> None:
    disk = small_disk(256)
    target = disk / "car.png"
    old = np.full((16, 16, 3), 7, np.uint8)
    write_image(target, old)
    fill(disk, 0)
    with pytest.raises(WriteError, match="car.png: cannot write \\(no space left on device\\)"):
        write_image(target, np.random.default_rng(0).integers(0, 255, (256, 256, 3), dtype=np.uint8))
    assert np.array_equal(read_image(target), old)
    assert leftovers(disk) == []


def test_render_on_a_full_disk(small_disk, tmp_path: Path) -> None:
    from test_render import tiny_gan

    sources = photos(tmp_path / "in", 6)
    masks = masks_for(sources, tmp_path / "masks")
    gan = tiny_gan(tmp_path / "gan.safetensors")
    before = tree_digest(tmp_path / "in")
    disk = small_disk(512)
    out = disk / "out"
    args = ["render", str(tmp_path / "in"), "--mask", str(masks), "--gan", str(gan), "-o", str(out)]
    args += ["--level", "mild", "--format", "png", "--device", "cpu", "--json"]
    first = runner.invoke(app, [*args[:1], str(sources[0]), *args[2:]])
    assert first.exit_code == 0, first.output
    earlier = read_image(out / "car0_mild.png")
    fill(disk, 20_000)  # room for one more output or so, not six
    result = runner.invoke(app, [*args, "--overwrite"])
    assert result.exit_code == 1, result.output
    records = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    failed = [r for r in records if r["status"] == "failed"]
    assert failed and all("no space left on device" in r["error"].lower() for r in failed)
    for record in failed:  # one line each, naming the output
        assert sum(record["output"] in line for line in result.stderr.splitlines()) == 1
    for record in records:
        if record["status"] == "written":
            assert read_image(record["output"]).shape == (64, 64, 3)
    # The earlier output is either replaced whole or left as it was, never half-written.
    again = read_image(out / "car0_mild.png")
    assert again.shape == earlier.shape
    assert leftovers(disk) == []
    assert tree_digest(tmp_path / "in") == before


def test_synth_on_a_full_disk(small_disk) -> None:
    disk = small_disk(256)
    fill(disk, 60_000)
    out = disk / "synth"
    args = ["synth", str(out), "--none", "20", "--mild", "20", "--moderate", "20", "--severe", "20"]
    result = runner.invoke(app, [*args, "--carvana-cars", "2", "--size", "64", "--workers", "0"])
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "no space left on device" in lines[0].lower() and str(out) in lines[0]
    assert isinstance(result.exception, SystemExit), repr(result.exception)  # no traceback
    assert leftovers(disk) == []
    for path in out.rglob("*.png"):  # what was written before the disk filled is whole
        read_image(path)


def test_label_database_on_a_full_disk_keeps_every_committed_label(small_disk, tmp_path: Path) -> None:
    disk = small_disk(512)
    db_path = disk / "labels.sqlite"
    committed: dict[str, int] = {}
    with LabelDB(db_path) as db:
        ids = db.add_images([(tmp_path / f"car{i}.jpg", (64, 48), None) for i in range(40)])
        db.set_labels([(i, "mild") for i in ids[:10]], "ana")
        filler = fill(disk, 0)
        with pytest.raises(WriteError, match="labels.sqlite: cannot write"):
            for round_ in range(4000):
                # Long annotator names make each transaction need fresh pages.
                name = f"annotator-{round_:05d}-" + "x" * 200
                db.set_labels([(i, "severe") for i in ids], name)
                committed[name] = len(ids)
    filler.unlink()
    with LabelDB(db_path) as db:
        assert db.labels_of("ana") == dict.fromkeys(ids[:10], "mild")
        for name, count in committed.items():
            assert len(db.labels_of(name)) == count
    assert leftovers(disk) == []


def test_label_cli_on_a_full_disk_is_one_line(small_disk, tmp_path: Path) -> None:
    sources = photos(tmp_path / "levels" / "mild", 3)
    disk = small_disk(256)
    fill(disk, 0)
    result = runner.invoke(
        app, ["label", "import", str(tmp_path / "levels"), "--db", str(disk / "labels.sqlite"), "-a", "ana"]
    )
    assert result.exit_code != 0
    assert result.stderr.strip().count("\n") == 0 and "labels.sqlite" in result.stderr, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)  # no traceback
    assert all(p.exists() for p in sources)


def test_scrape_on_a_full_disk(small_disk, tmp_path: Path) -> None:
    from test_web_input import TIMEOUT, Hostile, serving

    disk = small_disk(512)
    out = disk / "raw"
    with serving(Hostile(tmp_path / "unused.jpg")) as site:
        listing = tmp_path / "cars.txt"
        listing.write_text("".join(site.url(f"/car{i}.jpg") + "\n" for i in range(3)))
        args = ["scrape", "--engine", "urls", "--from", str(listing), "--out", str(out)]
        args += ["--timeout", str(TIMEOUT), "--retries", "0", "--threads", "1"]
        first = runner.invoke(app, args)
        assert first.exit_code == 0, first.output
        kept = sorted((out / "cars").glob("*.jpg"))
        manifest = (out / "manifest.csv").read_text()
        assert len(kept) == 3
        listing.write_text("".join(site.url(f"/more{i}.jpg") + "\n" for i in range(3)))
        fill(disk, 0)
        result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {out / 'cars'}: cannot write (no space left on device)"], result.output
    assert sorted((out / "cars").glob("*.jpg")) == kept
    for path in kept:
        read_image(path)
    assert (out / "manifest.csv").read_text().startswith(manifest)
    assert leftovers(disk) == []


# --- trainers: the data, tiny options, and how to resume ---------------------------------------------


@pytest.fixture(scope="module")
def synth_data(tmp_path_factory) -> Path:
    from corrode.synth import SynthConfig, synth

    root = tmp_path_factory.mktemp("synth") / "data"
    synth(SynthConfig(root, none=4, mild=4, moderate=4, severe=4, carvana_cars=3, carvana_views=2,
                      size=32, workers=0))  # fmt: skip
    return root


TRAINERS = {
    "train-seg": (
        "carvana",
        ["--size", "32", "--width", "0.25", "--decoder-channels", "8,8,8,8", "--batch-size", "2",
         "--val-fraction", "0.2", "--device", "cpu", "--precision", "fp32", "--encoder-weights", "none"],
    ),
    "train-classifier": (
        "levels",
        ["--size", "32", "--width", "0.25", "--batch-size", "4", "--encoder-weights", "none",
         "--device", "cpu"],
    ),
    "train-gan": (
        "levels",
        ["--size", "32", "--decay-epochs", "0", "--base-channels", "4", "--residual-blocks", "1",
         "--discriminator-channels", "4", "--samples", "1", "--device", "cpu"],
    ),
}  # fmt: skip


def train_args(command: str, data: Path, run: Path, epochs: int) -> list[str]:
    folder, options = TRAINERS[command]
    return [command, str(data / folder), "--out", str(run), "--epochs", str(epochs), *options]


def resume_args(command: str, run: Path, epochs: int) -> list[str]:
    return [command, "--resume", str(run), "--epochs", str(epochs)]


def run_files_intact(run: Path) -> None:
    from corrode.checkpoint import load_state

    weights = sorted(run.glob("*.safetensors"))
    assert weights, f"no weights in {run}"
    for path in weights:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            assert list(handle.keys())
    if (run / "state.pt").exists():
        assert isinstance(load_state(run / "state.pt"), dict)
    json.loads((run / "config.json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize("command", list(TRAINERS))
def test_trainer_checkpoint_on_a_full_disk(command: str, small_disk, synth_data: Path) -> None:
    disk = small_disk(8192)
    run = disk / "run"
    first = runner.invoke(app, train_args(command, synth_data, run, 1))
    assert first.exit_code == 0, first.output
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    # Room for the small files a resumed run rewrites first (config, metrics), not for a checkpoint.
    fill(disk, 32 * 1024)
    result = runner.invoke(app, resume_args(command, run, 2))
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 1, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "no space left on device" in errors[0] and str(run) in errors[0], (
        result.output
    )
    assert leftovers(run) == []
    # Every checkpoint file is whole (replaced entirely or not at all) and loads; none went missing.
    run_files_intact(run)
    assert set(before) <= {p.name for p in run.iterdir()}


# --- kill -9 and SIGTERM mid-run ------------------------------------------------------------------------


def corrode_process(args: list[str], cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "corrode", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def metric_rows(run: Path) -> list[dict[str, str]]:
    import csv

    path = run / "metrics.csv"
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        return [row for row in csv.DictReader(handle) if None not in row.values()]


def wait_for(condition: Callable[[], bool], process: subprocess.Popen, seconds: float = 240) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if process.poll() is not None:
            out, err = process.communicate()
            pytest.fail(f"finished (rc {process.returncode}) before the signal:\n{err[-3000:]}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail("no progress to interrupt")
        time.sleep(0.05)


def interrupt(process: subprocess.Popen, sig: int) -> tuple[int, str]:
    process.send_signal(sig)
    try:
        _, err = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
        pytest.fail(f"still running 120 s after signal {sig}")
    return process.returncode, err


def unit(command: str) -> str:
    return "step" if command == "train-gan" else "epoch"


def check_resumed(command: str, run: Path, done_at_signal: int) -> None:
    rows = metric_rows(run)
    key = unit(command)
    units = [int(row[key]) for row in rows]
    # Every step or epoch is in the log once and in order: nothing redone twice, nothing skipped.
    assert units == list(range(1, len(units) + 1)), units
    assert len(units) > done_at_signal
    assert leftovers(run) == []


SIGNAL_CASES = [
    pytest.param(command, sig, id=f"{command}-{name}", marks=marks)
    for command in TRAINERS
    for sig, name, marks in (
        (signal.SIGKILL, "kill9", ()),
        (signal.SIGTERM, "sigterm", ()),
    )
]


@pytest.mark.slow
@pytest.mark.parametrize(("command", "sig"), SIGNAL_CASES)
def test_trainer_resumes_after_a_signal(command: str, sig: int, synth_data: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    args = train_args(command, synth_data, run, 400)
    if command == "train-gan":
        args += ["--checkpoint-every", "2"]
    process = corrode_process(args, tmp_path)
    wait_for(lambda: len(metric_rows(run)) >= 3 and (run / "state.pt").exists(), process)
    code, err = interrupt(process, sig)
    done = len(metric_rows(run))
    if sig == signal.SIGTERM:
        assert code == 143, f"rc {code}\n{err[-2000:]}"
    else:
        assert code == -signal.SIGKILL
    interval = 2 if command == "train-gan" else 1
    from corrode.checkpoint import load_state

    saved = load_state(run / "state.pt").get(unit(command))
    if isinstance(saved, int):
        # SIGTERM: the finished step or epoch is kept; kill -9: at most one checkpoint interval is lost.
        assert done - saved <= (0 if sig == signal.SIGTERM else interval), (done, saved)
    target = int(metric_rows(run)[-1]["epoch"]) + 1
    resumed = corrode_process(resume_args(command, run, target), tmp_path)
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err[-3000:]
    check_resumed(command, run, done)


# --- render: a signal mid-batch, and two renders into one folder -----------------------------------------


@pytest.fixture
def render_batch(tmp_path: Path) -> tuple[list[str], Path, int]:
    from test_render import tiny_gan

    count = 40
    sources = photos(tmp_path / "in", count)
    masks = masks_for(sources, tmp_path / "masks")
    gan = tiny_gan(tmp_path / "gan.safetensors")
    out = tmp_path / "out"
    args = ["render", str(tmp_path / "in"), "--mask", str(masks), "--gan", str(gan), "-o", str(out)]
    return [*args, "--level", "mild", "--device", "cpu", "--batch-size", "1", "--json"], out, count


def outputs(out: Path) -> list[Path]:
    return sorted(p for p in out.glob("car*_mild.png")) if out.exists() else []


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["kill9", "sigterm"])
def test_render_batch_rerun_after_a_signal(render_batch, tmp_path: Path, sig: int) -> None:
    args, out, count = render_batch
    before = tree_digest(tmp_path / "in")
    process = corrode_process(args, tmp_path)
    wait_for(lambda: len(outputs(out)) >= 3, process)
    code, err = interrupt(process, sig)
    assert code in (-sig, 128 + sig), err[-2000:]
    done = outputs(out)
    assert 3 <= len(done) < count
    for path in done:  # an output is whole or absent
        assert read_image(path).shape == (64, 64, 3)
    # What a kill in the middle of a write leaves: a temporary file of the dead process.
    stray = out / f".car39_mild.{process.pid}.abcd1234.part.png"
    stray.write_bytes(b"\x89PNG half")
    rerun = corrode_process(args, tmp_path)
    stdout, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err[-3000:]
    records = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    assert sum(r["status"] == "skipped" for r in records) == len(done)  # nothing redone
    assert len(outputs(out)) == count
    for path in outputs(out):
        read_image(path)
    assert leftovers(out) == [] and not stray.exists()
    assert tree_digest(tmp_path / "in") == before


@pytest.mark.slow
def test_two_renders_into_one_folder(render_batch, tmp_path: Path) -> None:
    args, out, count = render_batch
    first = corrode_process([*args, "--overwrite"], tmp_path)
    second = corrode_process([*args, "--overwrite"], tmp_path)
    results = [(p, *p.communicate(timeout=600)) for p in (first, second)]
    for process, _, err in results:
        assert process.returncode == 0, err[-3000:]
    assert len(outputs(out)) == count
    for path in outputs(out):
        assert read_image(path).shape == (64, 64, 3)
    assert leftovers(out) == []
    assert sorted(p.name for p in out.iterdir()) == [p.name for p in outputs(out)]


# --- two labelers on one database ---------------------------------------------------------------------------

LABELER = """
import sys
from pathlib import Path
from corrode.label.db import LabelDB
db_path, annotator, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
levels = ("none", "mild", "moderate", "severe")
with LabelDB(db_path) as db:
    ids = [image.id for image in db.images()]
    for n in range(count):
        image_id = ids[n % len(ids)]
        db.set_label(image_id, annotator, levels[(n + len(annotator)) % 4])
        db.set_label(image_id, "shared-" + annotator, levels[n % 4])
        if n % 7 == 0:
            db.undo("shared-" + annotator)
"""


@pytest.mark.slow
def test_two_labelers_on_one_database(tmp_path: Path) -> None:
    db_path = tmp_path / "labels.sqlite"
    with LabelDB(db_path) as db:
        db.add_images([(tmp_path / f"car{i}.jpg", (64, 48), None) for i in range(60)])
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    count = 300
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", LABELER, str(db_path), name, str(count)],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("ana", "bo")
    ]
    for process in processes:
        _, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
    levels_ = ("none", "mild", "moderate", "severe")
    with LabelDB(db_path) as db:
        ids = [image.id for image in db.images()]
        for name in ("ana", "bo"):
            expected = {}
            for n in range(count):
                expected[ids[n % len(ids)]] = levels_[(n + len(name)) % 4]
            assert db.labels_of(name) == expected, name
        check = db.read("PRAGMA integrity_check")
    assert check == [("ok",)]


def test_stray_temps_of_dead_writers_only_are_removed(tmp_path: Path) -> None:
    from corrode.images import remove_stray_temps

    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
    dead = int(finished.stdout)
    alive = os.getpid()
    names = {
        f".car.{dead}.abcd1234.part.png": False,  # a killed writer's: removed
        f".state.{dead}.x_y9z0ab.part.pt": False,
        f".car.{alive}.abcd1234.part.png": True,  # a live writer's: kept
        ".hidden.png": True,  # not a temporary name
        "car.png": True,
    }
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    removed = remove_stray_temps(tmp_path)
    assert {p.name for p in removed} == {name for name, kept in names.items() if not kept}
    assert {p.name for p in tmp_path.iterdir()} == {name for name, kept in names.items() if kept}


def test_manifest_row_is_whole_or_absent_on_a_full_disk(small_disk) -> None:
    from corrode.scrape.manifest import CsvLog

    disk = small_disk(256)
    log = CsvLog(disk / "manifest.csv", ("file", "note"))
    log.append({"file": "a.jpg", "note": "first"})
    fill(disk, 0)
    with pytest.raises(WriteError, match="manifest.csv: cannot write"):
        for n in range(10_000):
            log.append({"file": f"{n}.jpg", "note": "y" * 3000})
    text = (disk / "manifest.csv").read_text()
    assert text.endswith("\n") and text.startswith("file,note\na.jpg,first\n")
    assert all(len(line.split(",")) == 2 for line in text.splitlines())


def test_label_server_on_a_full_disk_says_not_saved(small_disk, tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    from corrode.label.server import LabelConfig, create_app, prepare

    sources = photos(tmp_path / "photos", 3)
    disk = small_disk(512)
    reported: list[str] = []
    config = LabelConfig(images=(tmp_path / "photos",), db=disk / "labels.sqlite", annotator="ana")
    with LabelDB(config.db) as db:
        session = prepare(config, db, report=reported.append)
        client = TestClient(create_app(session), base_url="http://127.0.0.1")
        headers = {"X-Label-Token": session.token}
        ids = [item["id"] for item in client.get("/api/state").json()["items"]]
        assert (
            client.post("/api/label", json={"id": ids[0], "label": "mild"}, headers=headers).status_code
            == 200
        )
        fill(disk, 0)
        answers = [
            client.post("/api/label", json={"id": ids[n % 3], "label": "severe"}, headers=headers)
            for n in range(400)
        ]
    refused = [a for a in answers if a.status_code != 200]
    assert refused and {a.status_code for a in refused} == {507}
    assert refused[0].json()["error"].startswith("not saved: ")
    assert reported and all("labels.sqlite: cannot write" in line for line in reported)
    (disk / "filler.bin").unlink()
    with LabelDB(config.db) as db:
        labels = db.labels_of("ana")
    assert labels[ids[0]] in ("mild", "severe") and len(sources) == 3

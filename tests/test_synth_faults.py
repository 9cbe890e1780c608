"""`corrode synth` under faults: a disk that fills (ENOSPC) and Ctrl-C keep every finished pair, leave
no partial or temporary file, and a manifest that lists exactly what is on disk."""

import errno

import pytest
from typer.testing import CliRunner

import corrode.synth.run
from corrode.cli import app
from corrode.errors import FileError
from corrode.synth import SynthConfig, read_manifest, synth

runner = CliRunner()
COUNTS = ["--none", "2", "--mild", "1", "--moderate", "0", "--severe", "0"]
COUNTS += ["--carvana-cars", "0", "--size", "40"]
TINY = {"none": 3, "mild": 2, "moderate": 2, "severe": 2, "carvana_cars": 1, "carvana_views": 2, "size": 40}


def _fill_disk_after(monkeypatch, name: str, calls: int) -> None:
    """Make corrode.synth.run's `name` writer (write_image or write_mask) fail (ENOSPC) from call `calls`."""
    real = getattr(corrode.synth.run, name)
    count = {"n": 0}

    def writer(path, *args, **kwargs):
        count["n"] += 1
        if count["n"] >= calls:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(corrode.synth.run, name, writer)


def _files(out):
    return sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())


def _assert_consistent(out, finished: int) -> None:
    files = _files(out)
    assert not [f for f in files if ".part" in f or f.rsplit("/", 1)[-1].startswith(".")]
    rows = read_manifest(out / "manifest.csv")
    assert len(rows) == finished
    listed = {row["file"] for row in rows} | {row["mask"] for row in rows}
    assert set(files) - {"manifest.csv"} == listed  # every pair on disk is listed, and nothing else


@pytest.mark.parametrize("writer", ["write_image", "write_mask"])
def test_disk_full_names_the_file_and_keeps_finished_pairs(tmp_path, monkeypatch, writer) -> None:
    _fill_disk_after(monkeypatch, writer, 4)
    out = tmp_path / "out"
    with pytest.raises(FileError) as caught:
        synth(SynthConfig(out=out, **TINY))
    assert "no space left on device" in str(caught.value)
    assert caught.value.path.is_relative_to(out) and not caught.value.path.exists()
    _assert_consistent(out, 3)
    assert not (out / "preview.png").exists() and not (out / "config.json").exists()


def test_disk_full_cli_is_one_line_and_exit_1(tmp_path, monkeypatch) -> None:
    _fill_disk_after(monkeypatch, "write_mask", 2)
    out = tmp_path / "cli"
    result = runner.invoke(app, ["synth", str(out), *COUNTS])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "no space left on device" in lines[0] and str(out) in lines[0]
    assert "Traceback" not in result.output
    _assert_consistent(out, 1)


def test_quiet_after_the_subcommand(tmp_path) -> None:
    result = runner.invoke(app, ["synth", str(tmp_path / "q"), *COUNTS, "-q"])
    assert result.exit_code == 0, result.output
    assert result.output == ""


def test_disk_full_on_the_manifest_is_one_error_too(tmp_path, monkeypatch) -> None:
    def full(path, text):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(corrode.synth.run, "atomic_write_text", full)
    with pytest.raises(FileError, match="manifest.csv: cannot write: no space left on device"):
        synth(SynthConfig(out=tmp_path / "out", **TINY))


def test_ctrl_c_keeps_finished_files_and_their_manifest(tmp_path) -> None:
    out = tmp_path / "out"

    def progress(done: int, total: int) -> None:
        if done == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        synth(SynthConfig(out=out, **TINY), progress=progress)
    _assert_consistent(out, 5)


def test_ctrl_c_between_image_and_mask_takes_the_image_back(tmp_path, monkeypatch) -> None:
    real = corrode.synth.run.write_mask
    count = {"n": 0}

    def interrupted(path, mask):
        count["n"] += 1
        if count["n"] == 3:
            raise KeyboardInterrupt
        return real(path, mask)

    monkeypatch.setattr(corrode.synth.run, "write_mask", interrupted)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        synth(SynthConfig(out=out, **TINY))
    _assert_consistent(out, 2)


def test_rerun_with_overwrite_after_a_failure_finishes_the_set(tmp_path, monkeypatch) -> None:
    out = tmp_path / "out"
    with monkeypatch.context() as patch:
        _fill_disk_after(patch, "write_image", 3)
        with pytest.raises(FileError):
            synth(SynthConfig(out=out, **TINY))
    synth(SynthConfig(out=out, overwrite=True, **TINY))
    assert len(read_manifest(out / "manifest.csv")) == 11


def test_ctrl_c_with_a_process_pool_lists_every_finished_pair(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(corrode.synth.run, "_POOL_MINIMUM", 1)
    monkeypatch.setattr(corrode.synth.run, "_CHUNK", 2)
    out = tmp_path / "pool"

    def progress(done: int, total: int) -> None:
        if done >= 4:
            raise KeyboardInterrupt

    config = SynthConfig(out=out, workers=2, **{**TINY, "none": 12, "carvana_cars": 0})
    with pytest.raises(KeyboardInterrupt):
        synth(config, progress=progress)
    rows = read_manifest(out / "manifest.csv")
    assert 4 <= len(rows) < 18  # what was finished, chunks in flight included; not the whole set
    _assert_consistent(out, len(rows))


@pytest.mark.slow
def test_real_ctrl_c_on_the_process_group(tmp_path) -> None:
    """SIGINT to the whole process group, as a terminal's Ctrl-C sends it: parent, forkserver, workers."""
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "interrupted"
    command = [sys.executable, "-m", "corrode", "synth", str(out), "--none", "400", "--mild", "0"]
    command += ["--moderate", "0", "--severe", "0", "--carvana-cars", "0", "--size", "48", "--workers", "2"]

    def default_sigint() -> None:
        # A job started in the background (`cmd &`, as CI scripts are) inherits SIGINT ignored, and
        # Python then never raises KeyboardInterrupt: give the child a terminal's default.
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    process = subprocess.Popen(
        command, start_new_session=True, stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if len(list((out / "levels_masks").rglob("*.png"))) >= 20:
            break
        time.sleep(0.1)
    assert process.poll() is None, process.stderr.read()
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    rows = read_manifest(out / "manifest.csv")
    assert 20 <= len(rows) < 400
    _assert_consistent(out, len(rows))


def test_missing_textures_are_one_clear_error_before_anything_is_written(tmp_path, monkeypatch) -> None:
    import corrode.synth.textures as textures

    empty = tmp_path / "no-textures"
    empty.mkdir()
    monkeypatch.setattr(corrode.synth.run, "load_textures", lambda: textures.load_textures(empty))
    with pytest.raises(FileError, match="rust texture missing"):
        synth(SynthConfig(out=tmp_path / "out", **TINY))
    assert not (tmp_path / "out").exists()
    synth(SynthConfig(out=tmp_path / "flat", rust_style="flat", **TINY))  # the flat style needs none

"""`corrode synth` under faults: a disk that fills (ENOSPC) and Ctrl-C keep every finished pair, leave
no partial or temporary file, and a manifest that lists exactly what is on disk."""

import errno

import pytest
from typer.testing import CliRunner

import corrode.synth
from corrode.cli import app
from corrode.errors import FileError
from corrode.synth import SynthConfig, read_manifest, synth

runner = CliRunner()
COUNTS = ["--none", "2", "--mild", "1", "--moderate", "0", "--severe", "0"]
COUNTS += ["--carvana-cars", "0", "--size", "40"]
TINY = {"none": 3, "mild": 2, "moderate": 2, "severe": 2, "carvana_cars": 1, "carvana_views": 2, "size": 40}


def _fill_disk_after(monkeypatch, name: str, calls: int) -> None:
    """Make corrode.synth's `name` writer (write_image or write_mask) raise ENOSPC from call `calls` on."""
    real = getattr(corrode.synth, name)
    count = {"n": 0}

    def writer(path, *args, **kwargs):
        count["n"] += 1
        if count["n"] >= calls:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(corrode.synth, name, writer)


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


def test_disk_full_on_the_manifest_is_one_error_too(tmp_path, monkeypatch) -> None:
    def full(path, text):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(corrode.synth, "atomic_write_text", full)
    with pytest.raises(FileError, match="no space|No space"):
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
    real = corrode.synth.write_mask
    count = {"n": 0}

    def interrupted(path, mask):
        count["n"] += 1
        if count["n"] == 3:
            raise KeyboardInterrupt
        return real(path, mask)

    monkeypatch.setattr(corrode.synth, "write_mask", interrupted)
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
    monkeypatch.setattr(corrode.synth, "_POOL_MINIMUM", 1)
    monkeypatch.setattr(corrode.synth, "_CHUNK", 2)
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

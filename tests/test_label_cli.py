"""`corrode label` on the command line: the serve shorthand, stats, export, import, and a real server."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import corrode.label.server as server_module
from corrode.cli import app
from corrode.label.db import LabelDB

runner = CliRunner()


def _photos(folder, count=3):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        pixels = np.random.default_rng(i).integers(0, 255, (20, 30, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"car_{i}.png")
    return folder


@pytest.fixture
def fake_serve(monkeypatch):
    """Replace the blocking server with one that registers the images and announces a URL."""
    calls = []

    def serve(config, *, report, announce):
        with LabelDB(config.db) as db:
            session = server_module.prepare(config, db, report=report)
            calls.append((config, session))
            announce("http://127.0.0.1:9/", session)

    monkeypatch.setattr(server_module, "serve", serve)
    return calls


def test_help_lists_subcommands():
    result = runner.invoke(app, ["label", "--help"])
    assert result.exit_code == 0
    for name in ("serve", "stats", "export", "import"):
        assert name in result.stdout


@pytest.mark.parametrize("prefix", [[], ["serve"]])
def test_label_images_is_serve(tmp_path, fake_serve, prefix):
    photos = _photos(tmp_path / "photos")
    (photos / "broken.png").write_bytes(b"nope")
    db = tmp_path / "labels.sqlite"
    args = ["label", *prefix, str(photos), "--db", str(db), "--annotator", "alice", "--no-browser"]
    result = runner.invoke(app, [*args, "--order", "name", "--port", "0"])
    assert result.exit_code == 0, result.output
    [(config, session)] = fake_serve
    assert config.host == "127.0.0.1" and config.order == "name" and config.annotator == "alice"
    assert len(session.image_ids) == 3
    assert "http://127.0.0.1:9/" in result.stdout
    assert "broken.png: not an image" in result.stderr
    assert "warning" not in result.stderr


def test_options_before_images_and_explicit_host_warns(tmp_path, fake_serve):
    photos = _photos(tmp_path / "photos")
    db = tmp_path / "labels.sqlite"
    args = ["label", "--db", str(db), "-a", "bob", "--host", "0.0.0.0", "--no-browser", str(photos)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert fake_serve[0][0].host == "0.0.0.0"
    assert "warning" in result.stderr and "0.0.0.0" in result.stderr


def test_bad_options(tmp_path, fake_serve):
    photos = _photos(tmp_path / "photos")
    db = str(tmp_path / "labels.sqlite")
    result = runner.invoke(app, ["label", str(photos), "--db", db, "-a", "x", "--order", "best"])
    assert result.exit_code == 2 and "order" in result.stderr
    result = runner.invoke(app, ["label", str(tmp_path / "none"), "--db", db, "-a", "x", "--no-browser"])
    assert result.exit_code == 2 and "none: no such file or folder" in result.stderr
    assert fake_serve == []


def _votes(tmp_path):
    photos = _photos(tmp_path / "photos", 3)
    db_path = tmp_path / "labels.sqlite"
    with LabelDB(db_path) as db:
        ids = db.add_images([(p, (30, 20), None) for p in sorted(photos.iterdir())])
        for image_id, (a, b) in zip(
            ids, [("none", "none"), ("mild", "moderate"), ("severe", "severe")], strict=True
        ):
            db.set_label(image_id, "ann", a)
            db.set_label(image_id, "bob", b)
    return db_path, photos


def test_stats_json_and_table(tmp_path):
    db_path, _ = _votes(tmp_path)
    result = runner.invoke(app, ["label", "stats", "--db", str(db_path), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["images"] == 3 and summary["levels"]["severe"] == 2
    # ann 0 1 3 vs bob 0 2 3: sum W*O = 1/9; marginals (1,1,0,1) and (1,0,1,1):
    # sum r c (i-j)^2 = (0+4+9) + (1+1+4) + (9+1+0) = 29 -> sum W*E = 29/27; kappa = 1 - 3/29.
    assert summary["agreement"]["cohen_kappa_quadratic"][0]["kappa"] == pytest.approx(26 / 29)
    table = runner.invoke(app, ["label", "stats", "--db", str(db_path)])
    assert table.exit_code == 0 and "ann" in table.stdout and "Krippendorff" in table.stdout
    missing = runner.invoke(app, ["label", "stats", "--db", str(tmp_path / "missing.sqlite")])
    assert missing.exit_code == 2 and "no such label database" in missing.stderr


def test_export_and_import_round_trip(tmp_path):
    db_path, photos = _votes(tmp_path)
    out = tmp_path / "levels"
    result = runner.invoke(app, ["label", "export", "--db", str(db_path), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["exported"] == {"none": 1, "mild": 1, "moderate": 0, "severe": 1}
    assert (out / "mild" / "car_1.png").is_file()
    (photos / "car_0.png").unlink()
    again = runner.invoke(app, ["label", "export", "--db", str(db_path), "--out", str(out)])
    assert again.exit_code == 1 and "car_0.png: no such file" in again.stderr

    imported = tmp_path / "imported.sqlite"
    result = runner.invoke(app, ["label", "import", str(out), "--db", str(imported)])
    assert result.exit_code == 0, result.output
    assert "imported 2 labels as 'levels'" in result.stderr
    with LabelDB(imported) as db:
        assert sorted(db.labels_of("levels").values()) == ["mild", "severe"]


def test_real_server_from_the_command_line(tmp_path):
    photos = _photos(tmp_path / "photos", 2)
    db = tmp_path / "labels.sqlite"
    command = [
        sys.executable,
        "-m",
        "corrode",
        "label",
        str(photos),
        "--db",
        str(db),
        "-a",
        "cli",
        "--no-browser",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url + "api/state", timeout=30) as response:
            state = json.load(response)
        assert [item["name"] for item in state["items"]] != [] and state["total"] == 2
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=30)
    assert process.returncode in (0, 130)

"""Votes -> level folders + CSV: median resolution, --min-votes, --max-spread, rejects, links."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image

from corrode.errors import ConfigError
from corrode.label.db import REJECT, SKIP, LabelDB
from corrode.label.export import ExportConfig, export, resolve


def _photo(path, seed):
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 255, (24, 32, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


@pytest.mark.parametrize(
    ("votes", "level"),
    [
        (["mild"], "mild"),
        (["none", "mild", "severe"], "mild"),  # median of 0 1 3
        (["mild", "moderate"], "mild"),  # even: the lower middle level
        (["severe", "moderate", "severe", "severe"], "severe"),
        (["mild", "mild", REJECT], "mild"),  # a minority reject is outvoted
    ],
)
def test_resolve_median(votes, level):
    assert resolve(votes).level == level


def test_resolve_left_out():
    assert resolve([REJECT, "mild"]).reason == "rejected"  # half reject: out
    assert resolve(["mild"], min_votes=2).reason == "too few votes"
    spread = resolve(["none", "moderate"], max_spread=1)
    assert (spread.level, spread.reason, spread.spread) == (None, "votes spread too far", 2)
    assert resolve(["none", "mild"], max_spread=1).level == "none"


def test_config_checks(tmp_path):
    with pytest.raises(ConfigError):
        ExportConfig(db=tmp_path / "x", out=tmp_path, min_votes=0)
    with pytest.raises(ConfigError):
        ExportConfig(db=tmp_path / "x", out=tmp_path, max_spread=4)


def _database(tmp_path):
    source = tmp_path / "photos"
    paths = [_photo(source / f"car_{i}.png", i) for i in range(5)]
    paths.append(_photo(source / "other" / "car_0.png", 9))  # same name, another folder
    db_path = tmp_path / "labels.sqlite"
    with LabelDB(db_path) as db:
        ids = db.add_images([(p, (32, 24), None) for p in paths])
        table = {
            ids[0]: {"ann": "none", "bob": "mild", "cat": "mild"},  # -> mild
            ids[1]: {"ann": "severe", "bob": "severe"},  # -> severe
            ids[2]: {"ann": "none", "bob": "severe"},  # spread 3
            ids[3]: {"ann": REJECT, "bob": REJECT, "cat": "mild"},  # rejected
            ids[4]: {"ann": "moderate", "bob": SKIP},  # one vote
            ids[5]: {"ann": "mild", "bob": "moderate"},  # -> mild, name clash with car_0
        }
        for image_id, votes in table.items():
            for annotator, label in votes.items():
                db.set_label(image_id, annotator, label)
    return db_path, paths, ids


def test_export_folders_and_csv(tmp_path):
    db_path, paths, ids = _database(tmp_path)
    before = {p: p.read_bytes() for p in paths}
    out = tmp_path / "levels"
    result = export(ExportConfig(db=db_path, out=out, min_votes=2, max_spread=1))
    assert result.failed == []
    assert result.exported == {"none": 0, "mild": 2, "moderate": 0, "severe": 1}
    assert result.left_out == {"votes spread too far": 1, "rejected": 1, "too few votes": 1}
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert files == sorted(["mild/car_0.png", f"mild/car_0-{ids[5]}.png", "severe/car_1.png"])
    assert (out / "severe" / "car_1.png").read_bytes() == paths[1].read_bytes()
    with (out / "labels.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["file"], r["level"], r["votes"], r["spread"]) for r in rows] == [
        ("mild/car_0.png", "mild", "mild mild none", "1"),
        ("severe/car_1.png", "severe", "severe severe", "0"),
        (f"mild/car_0-{ids[5]}.png", "mild", "mild moderate", "1"),
    ]
    assert rows[0]["source"] == str(paths[0].resolve())
    assert {p: p.read_bytes() for p in paths} == before  # inputs untouched


def test_reexport_removes_stale_files_and_links(tmp_path):
    db_path, paths, ids = _database(tmp_path)
    out = tmp_path / "levels"
    export(ExportConfig(db=db_path, out=out))
    assert (out / "none" / "car_2.png").exists()  # median of none, severe: none (lower middle)
    with LabelDB(db_path) as db:
        db.set_label(ids[2], "ann", "severe")
    result = export(ExportConfig(db=db_path, out=out, link=True))
    assert not (out / "none" / "car_2.png").exists()
    linked = out / "severe" / "car_2.png"
    assert linked.stat().st_ino == paths[2].stat().st_ino
    assert result.exported["severe"] == 2


def test_missing_source_is_reported_and_rest_exported(tmp_path):
    db_path, paths, _ = _database(tmp_path)
    paths[1].unlink()
    result = export(ExportConfig(db=db_path, out=tmp_path / "levels"))
    assert len(result.failed) == 1 and "car_1.png: no such file" in result.failed[0]
    assert result.exported["mild"] == 2


def test_stale_cleanup_touches_only_level_folders(tmp_path):
    db_path, paths, _ = _database(tmp_path)
    out = tmp_path / "levels"
    out.mkdir()
    keep = _photo(tmp_path / "keep.png", 1)
    (out / "notes.png").write_bytes(b"mine")
    (out / "labels.csv").write_text(f"file,level\n{keep},mild\n../keep.png,mild\nnotes.png,none\n")
    export(ExportConfig(db=db_path, out=out))
    assert keep.exists() and (out / "notes.png").exists()

"""The label database: one row per image per annotator, undo, WAL, concurrent writers, kills."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from corrode.errors import UsageError
from corrode.label.db import REJECT, SKIP, LabelDatabaseError, LabelDB, check_annotator


def _register(db: LabelDB, folder: Path, count: int) -> list[int]:
    return db.add_images([(folder / f"image_{i:03d}.png", (64, 48), None) for i in range(count)])


def test_schema_is_wal_and_one_row_per_image_per_annotator(tmp_path):
    with LabelDB(tmp_path / "labels.sqlite") as db:
        ids = _register(db, tmp_path, 3)
        assert db.read("PRAGMA journal_mode")[0][0] == "wal"
        db.set_label(ids[0], "alice", "mild")
        db.set_label(ids[0], "alice", "severe")  # relabel: still one row
        db.set_label(ids[0], "bob", "none")
        rows = db.all_labels()
        assert [(r[0], r[1], r[2]) for r in rows] == [(ids[0], "alice", "severe"), (ids[0], "bob", "none")]
        assert all(isinstance(r[3], float) and r[3] > 0 for r in rows)


def test_registering_twice_keeps_ids_and_labels(tmp_path):
    with LabelDB(tmp_path / "labels.sqlite") as db:
        first = _register(db, tmp_path, 4)
        db.set_label(first[1], "alice", "moderate")
        again = _register(db, tmp_path, 5)
        assert again[:4] == first and len(set(again)) == 5
        assert db.labels_of("alice") == {first[1]: "moderate"}


def test_undo_restores_previous_label_then_nothing(tmp_path):
    with LabelDB(tmp_path / "labels.sqlite") as db:
        ids = _register(db, tmp_path, 2)
        db.set_label(ids[0], "alice", "mild")
        db.set_label(ids[0], "alice", "severe")
        db.set_label(ids[1], "alice", SKIP)
        db.set_label(ids[1], "bob", REJECT)
        change = db.undo("alice")
        assert (change.image_id, change.label) == (ids[1], None)
        assert db.undo("alice").label == "mild"
        assert db.undo("alice").label is None
        assert db.undo("alice") is None
        assert db.labels_of("alice") == {}
        assert db.labels_of("bob") == {ids[1]: REJECT}  # other annotators untouched


def test_undo_limited_to_given_images(tmp_path):
    with LabelDB(tmp_path / "labels.sqlite") as db:
        ids = _register(db, tmp_path, 2)
        db.set_label(ids[0], "alice", "mild")
        db.set_label(ids[1], "alice", "none")
        assert db.undo("alice", [ids[0]]).image_id == ids[0]
        assert db.labels_of("alice") == {ids[1]: "none"}


def test_votes_leave_out_skips(tmp_path):
    with LabelDB(tmp_path / "labels.sqlite") as db:
        ids = _register(db, tmp_path, 2)
        db.set_label(ids[0], "alice", SKIP)
        db.set_label(ids[0], "bob", "mild")
        db.set_label(ids[1], "alice", REJECT)
        assert db.votes() == {ids[0]: {"bob": "mild"}, ids[1]: {"alice": REJECT}}


@pytest.mark.parametrize("label", ["", "Severe", "5", "../x", "none "])
def test_unknown_labels_refused(tmp_path, label):
    with LabelDB(tmp_path / "labels.sqlite") as db:
        ids = _register(db, tmp_path, 1)
        with pytest.raises(UsageError):
            db.set_label(ids[0], "alice", label)
        assert db.all_labels() == []


def test_unknown_image_refused(tmp_path):
    with LabelDB(tmp_path / "labels.sqlite") as db, pytest.raises(UsageError, match="no image with id 99"):
        db.set_label(99, "alice", "mild")


@pytest.mark.parametrize("name", ["", "   ", "a" * 65, "tab\tname"])
def test_bad_annotator_names(name):
    with pytest.raises(UsageError):
        check_annotator(name)


def test_not_a_database(tmp_path):
    path = tmp_path / "labels.sqlite"
    path.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(LabelDatabaseError, match="labels.sqlite"):
        LabelDB(path)
    with pytest.raises(UsageError, match="no such label database"):
        LabelDB(tmp_path / "missing.sqlite", create=False)


def test_threads_writing_at_once_lose_nothing(tmp_path):
    path = tmp_path / "labels.sqlite"
    with LabelDB(path) as db:
        ids = _register(db, tmp_path, 40)
    shared = LabelDB(path)
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def work(annotator: str, db: LabelDB) -> None:
        try:
            start.wait()
            for n, image_id in enumerate(ids):
                db.set_label(image_id, annotator, ("none", "mild", "moderate", "severe")[n % 4])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    own = [LabelDB(path), LabelDB(path)]
    threads = [
        threading.Thread(target=work, args=("t0", shared)),
        threading.Thread(target=work, args=("t1", shared)),
        threading.Thread(target=work, args=("t2", own[0])),
        threading.Thread(target=work, args=("t3", own[1])),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for db in (shared, *own):
        db.close()
    assert errors == []
    with LabelDB(path) as db:
        assert len(db.all_labels()) == 4 * 40
        assert db.annotators() == ["t0", "t1", "t2", "t3"]


WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from corrode.label.db import LabelDB
    db = LabelDB(sys.argv[1])
    annotator, count = sys.argv[2], int(sys.argv[3])
    go = Path(sys.argv[4])
    while not go.exists():
        time.sleep(0.005)
    for n in range(count):
        image_id = 1 + n % 30
        db.set_label(image_id, annotator, ("none", "mild", "moderate", "severe")[n % 4])
        print(n, image_id, flush=True)  # printed only after the commit returned
    """
)


def test_two_processes_writing_at_once_lose_nothing(tmp_path):
    path = tmp_path / "labels.sqlite"
    with LabelDB(path) as db:
        _register(db, tmp_path, 30)
    go = tmp_path / "go"
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), name, "30", str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("alice", "bob")
    ]
    go.touch()
    for writer in writers:
        out, err = writer.communicate(timeout=120)
        assert writer.returncode == 0, err
        assert len(out.splitlines()) == 30
    with LabelDB(path) as db:
        assert len(db.labels_of("alice")) == 30 and len(db.labels_of("bob")) == 30
        assert len(db.read("SELECT * FROM events")) == 60


def test_sigkill_during_writes_keeps_every_committed_label(tmp_path):
    path = tmp_path / "labels.sqlite"
    with LabelDB(path) as db:
        _register(db, tmp_path, 30)
    go = tmp_path / "go"
    go.touch()
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), "victim", "100000", str(go)],
        stdout=subprocess.PIPE,
        text=True,
    )
    acknowledged: dict[int, int] = {}
    assert writer.stdout is not None
    for line in writer.stdout:
        n, image_id = map(int, line.split())
        acknowledged[image_id] = n
        if n >= 45:  # well into its second pass over the images: relabels too
            break
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=30)
    assert writer.returncode == -signal.SIGKILL
    connection = sqlite3.connect(path)
    assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    connection.close()
    with LabelDB(path) as db:
        stored = db.labels_of("victim")
        events = len(db.read("SELECT * FROM events WHERE annotator = 'victim'"))
    names = ("none", "mild", "moderate", "severe")
    # Every acknowledged keypress is stored (the kill may land after one more commit, never before).
    assert events >= max(acknowledged.values()) + 1
    for image_id in range(1, 31):
        last = max(n for n in range(events) if 1 + n % 30 == image_id)
        assert stored[image_id] == names[last % 4]

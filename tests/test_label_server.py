"""The labeling web app through Starlette's TestClient: state, labels, undo, token, traversal, bad images."""

from __future__ import annotations

import io
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

with warnings.catch_warnings():  # starlette 1.x nudges towards httpx2; httpx is what is installed
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from corrode.label.db import LabelDB
from corrode.label.server import TOKEN_HEADER, LabelConfig, create_app, prepare, register

BASE = "http://127.0.0.1"


def _photo(path: Path, size=(48, 32), seed=0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


@pytest.fixture
def served(tmp_path):
    photos = tmp_path / "photos"
    for i in range(4):
        _photo(photos / f"car_{i}.png", seed=i)
    _photo(photos / "deep" / "big.png", size=(900, 300), seed=7)
    (photos / "empty.jpg").write_bytes(b"")
    (photos / "text.png").write_text("not a picture")
    # Header fine, data cut short: only found when the server decodes it.
    full = io.BytesIO()
    noise = np.random.default_rng(5).integers(0, 255, (200, 200, 3), dtype=np.uint8)
    Image.fromarray(noise).save(full, format="JPEG")
    (photos / "truncated.jpg").write_bytes(full.getvalue()[: len(full.getvalue()) // 2])
    reports: list[str] = []
    db = LabelDB(tmp_path / "labels.sqlite")
    config = LabelConfig(images=(photos,), db=db.path, annotator="alice", order="name", max_side=256)
    session = prepare(config, db, report=reports.append)
    client = TestClient(create_app(session), base_url=BASE)
    yield client, session, reports, tmp_path
    client.close()
    db.close()


def _post(client, path, body, token):
    return client.post(path, json=body, headers={TOKEN_HEADER: token})


def test_bad_files_reported_once_each_and_left_out(served):
    client, session, reports, _ = served
    assert sorted(Path(line.split(":")[0]).name for line in reports) == ["empty.jpg", "text.png"]
    assert all(": " in line for line in reports)
    state = client.get("/api/state").json()
    names = [item["name"] for item in state["items"]]
    assert names == ["car_0.png", "car_1.png", "car_2.png", "car_3.png", "big.png", "truncated.jpg"]
    assert state["total"] == 6 and state["done"] == 0
    assert [level["name"] for level in state["levels"]] == ["none", "mild", "moderate", "severe"]
    assert [level["key"] for level in state["levels"]] == ["1", "2", "3", "4"]


def test_page_carries_token_and_assets(served):
    client, session, _, _ = served
    page = client.get("/")
    assert page.status_code == 200 and session.token in page.text and "alice" in page.text
    assert client.get("/app.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/style.css").status_code == 200


def test_label_undo_progress(served):
    client, session, _, _ = served
    items = client.get("/api/state").json()["items"]
    first, second = items[0]["id"], items[1]["id"]
    answer = _post(client, "/api/label", {"id": first, "label": "moderate"}, session.token).json()
    assert answer["counts"]["moderate"] == 1 and answer["done"] == 1
    answer = _post(client, "/api/label", {"id": second, "label": "skip"}, session.token).json()
    assert answer["done"] == 1 and answer["counts"]["skip"] == 1
    undone = _post(client, "/api/undo", {}, session.token).json()
    assert (undone["id"], undone["label"]) == (second, None)
    state = client.get("/api/state").json()
    assert state["items"][-1] == {"id": first, "name": "car_0.png", "label": "moderate"}  # labelled go last
    assert session.db.labels_of("alice") == {first: "moderate"}
    _post(client, "/api/undo", {}, session.token)
    assert _post(client, "/api/undo", {}, session.token).json()["id"] is None


@pytest.mark.parametrize(
    "headers",
    [{}, {TOKEN_HEADER: ""}, {TOKEN_HEADER: "wrong"}, {"Cookie": "token=x"}],
)
def test_changes_without_the_token_are_refused(served, headers):
    client, session, _, _ = served
    image_id = client.get("/api/state").json()["items"][0]["id"]
    for path, body in (("/api/label", {"id": image_id, "label": "mild"}), ("/api/undo", {})):
        response = client.post(path, json=body, headers=headers)
        assert response.status_code == 403
    assert session.db.all_labels() == []


def test_form_posts_and_bad_bodies_refused(served):
    client, session, _, _ = served
    image_id = client.get("/api/state").json()["items"][0]["id"]
    headers = {TOKEN_HEADER: session.token}
    form = client.post("/api/label", data={"id": str(image_id), "label": "mild"}, headers=headers)
    assert form.status_code == 415
    assert _post(client, "/api/label", {"id": image_id, "label": "rusty"}, session.token).status_code == 400
    assert (
        _post(client, "/api/label", {"id": str(image_id), "label": "mild"}, session.token).status_code == 404
    )
    assert _post(client, "/api/label", {"id": 10_000, "label": "mild"}, session.token).status_code == 404
    assert client.get("/api/label").status_code == 405
    assert session.db.all_labels() == []


def test_images_downscaled_by_id(served):
    client, _, _, _ = served
    items = {item["name"]: item["id"] for item in client.get("/api/state").json()["items"]}
    response = client.get(f"/image/{items['big.png']}")
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(response.content)).size == (256, 85)
    small = Image.open(io.BytesIO(client.get(f"/image/{items['car_1.png']}").content))
    assert small.size == (48, 32)  # never enlarged


def test_undecodable_image_reported_marked_bad_and_server_goes_on(served):
    client, session, reports, _ = served
    items = {item["name"]: item["id"] for item in client.get("/api/state").json()["items"]}
    response = client.get(f"/image/{items['truncated.jpg']}")
    assert response.status_code == 422 and "truncated.jpg" in response.json()["error"]
    assert "truncated.jpg" in reports[-1]
    reported = len(reports)
    assert client.get(f"/image/{items['truncated.jpg']}").status_code == 422
    assert len(reports) == reported  # one line per bad file, however often it is asked for
    state = client.get("/api/state").json()
    assert "truncated.jpg" not in [item["name"] for item in state["items"]] and state["total"] == 5
    assert client.get(f"/image/{items['car_2.png']}").status_code == 200


@pytest.mark.parametrize(
    "url",
    [
        "/image/../../etc/passwd",
        "/image/..%2F..%2Fetc%2Fpasswd",
        "/image/%2e%2e/%2e%2e/etc/passwd",
        "/image//etc/passwd",
        "/image/1/../../labels.sqlite",
        "/image/-1",
        "/image/1.0",
        "/image/0x1",
        "/static/../labels.sqlite",
        "/labels.sqlite",
        "/../labels.sqlite",
        "/app.js/../../labels.sqlite",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/image?path=/etc/passwd",
    ],
)
def test_traversal_attempts_serve_nothing(served, url):
    client, _, _, _ = served
    response = client.get(url)
    assert response.status_code in (404, 405)
    assert b"root:" not in response.content and b"SQLite" not in response.content


def test_ids_of_other_images_in_the_database_not_served(served):
    client, session, _, tmp_path = served
    outside = _photo(tmp_path / "private" / "secret.png", seed=3)
    [outside_id] = session.db.add_images([(outside, (48, 32), None)])
    assert client.get(f"/image/{outside_id}").status_code == 404
    assert _post(client, "/api/label", {"id": outside_id, "label": "mild"}, session.token).status_code == 404


def test_foreign_host_header_refused(served):
    client, _, _, _ = served
    assert client.get("/api/state", headers={"Host": "evil.example:8000"}).status_code == 400


def test_register_reports_and_keeps_going(tmp_path):
    good = _photo(tmp_path / "a.png")
    bad = tmp_path / "b.png"
    bad.write_bytes(b"\x00" * 10)
    reports: list[str] = []
    with LabelDB(tmp_path / "labels.sqlite") as db:
        ids = register(db, (tmp_path,), recursive=True, report=reports.append)
        assert len(ids) == 1 and db.image(ids[0]).path == good.resolve()
        assert [image.bad is not None for image in db.images()] == [False, True]
    assert len(reports) == 1 and reports[0].startswith(str(bad))


def test_two_servers_on_one_database_lose_nothing(tmp_path):
    photos = tmp_path / "photos"
    for i in range(25):
        _photo(photos / f"car_{i:02d}.png", size=(16, 16), seed=i)
    path = tmp_path / "labels.sqlite"
    clients = []
    for annotator in ("alice", "bob"):
        db = LabelDB(path)
        config = LabelConfig(images=(photos,), db=path, annotator=annotator, order="name")
        session = prepare(config, db, report=print)
        clients.append((TestClient(create_app(session), base_url=BASE), session, db))
    start = threading.Barrier(2)
    statuses: list[int] = []

    def work(client, session):
        start.wait()
        for n, image_id in enumerate(session.image_ids):
            level = ("none", "mild", "moderate", "severe")[n % 4]
            statuses.append(
                _post(client, "/api/label", {"id": image_id, "label": level}, session.token).status_code
            )

    threads = [threading.Thread(target=work, args=(client, session)) for client, session, _ in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 50
    with LabelDB(path) as db:
        assert len(db.labels_of("alice")) == 25 and len(db.labels_of("bob")) == 25
    for client, _, db in clients:
        client.close()
        db.close()

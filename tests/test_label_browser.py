"""A real browser on the labeling page: headless Debian Chromium driven by Playwright.

Labels images with the keys, undoes one, skips one, reloads, and checks the database; also
times each keypress (from the key to the next image shown and the label saved) over 100 images.
"""

from __future__ import annotations

import statistics
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from corrode.label.db import SKIP, LabelDB
from corrode.label.server import LabelConfig, bind, create_app, make_server, prepare, url_of

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
IMAGES = 100

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"),
]


def _photos(folder: Path, count: int) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:96, 0:128]
    for i in range(count):
        base = rng.integers(40, 220, 3)
        pixels = np.clip(
            base + 0.4 * x[..., None] - 0.3 * y[..., None] + rng.normal(0, 8, (96, 128, 3)), 0, 255
        )
        Image.fromarray(pixels.astype(np.uint8)).save(folder / f"car_{i:03d}.png")
    (folder / "car_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n but nothing after")


@pytest.fixture
def live(tmp_path):
    """The real app on uvicorn in a thread, on a free port of 127.0.0.1."""
    _photos(tmp_path / "photos", IMAGES)
    reports: list[str] = []
    db = LabelDB(tmp_path / "labels.sqlite")
    config = LabelConfig(images=(tmp_path / "photos",), db=db.path, annotator="tester", order="name")
    session = prepare(config, db, report=reports.append)
    sock = bind("127.0.0.1", 0)
    server = make_server(create_app(session), sock)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started
    yield url_of(sock, "127.0.0.1"), session, reports
    server.should_exit = True
    thread.join(timeout=30)
    sock.close()
    db.close()


@pytest.fixture
def page():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        yield page
        browser.close()


def _shown(page) -> str:
    return page.eval_on_selector("#photo", "img => img.dataset.id")


def _press_and_wait(page, key: str, expected_id: int | str) -> float:
    """Press a key; seconds until the expected image is on screen and every save is acknowledged."""
    start = time.perf_counter()
    page.keyboard.press(key)
    page.wait_for_function(
        "id => { const img = document.getElementById('photo');"
        " return img.dataset.id === id && (img.hidden || img.complete) && window.__labeler.pending === 0; }",
        arg=str(expected_id),
        timeout=15_000,
    )
    return time.perf_counter() - start


def test_keyboard_labelling_undo_skip_reload(live, page):
    url, session, reports = live
    assert len(reports) == 1 and "car_broken.png" in reports[0]
    ids = {image.name: image.id for image in session.db.images()}
    order = [ids[f"car_{i:03d}.png"] for i in range(IMAGES)]

    page.goto(url)
    page.wait_for_function("window.__labeler.ready")
    assert _shown(page) == str(order[0])
    assert page.inner_text("#total") == str(IMAGES)  # the broken file is not counted or shown
    legend = page.inner_text("#legend")
    for word in ("none", "mild", "moderate", "severe", "reject", "skip"):
        assert word in legend

    for key, position in (("1", 1), ("2", 2), ("3", 3), ("4", 4), ("x", 5)):
        _press_and_wait(page, key, order[position])
    _press_and_wait(page, "z", order[4])  # undo the reject: back on that image
    assert session.db.labels_of("tester").get(order[4]) is None
    _press_and_wait(page, "4", order[5])
    _press_and_wait(page, "s", order[6])  # skip
    _press_and_wait(page, "2", order[7])
    _press_and_wait(page, "ArrowLeft", order[6])
    assert page.inner_text("#current") == "mild"
    _press_and_wait(page, "ArrowRight", order[7])

    expected = {
        order[0]: "none",
        order[1]: "mild",
        order[2]: "moderate",
        order[3]: "severe",
        order[4]: "severe",
        order[5]: SKIP,
        order[6]: "mild",
    }
    assert session.db.labels_of("tester") == expected
    assert page.inner_text("#done") == "6"
    counts = dict(
        zip(
            page.eval_on_selector_all("#legend li", "items => items.map(li => li.dataset.label)"),
            page.eval_on_selector_all("#legend li .count", "items => items.map(c => c.textContent)"),
            strict=True,
        )
    )
    assert counts == {"none": "1", "mild": "2", "moderate": "1", "severe": "2", "reject": "0", "skip": "1"}

    page.reload()
    page.wait_for_function("window.__labeler.ready")
    assert _shown(page) == str(order[7])  # the first image not yet labelled
    assert page.inner_text("#done") == "6"
    assert session.db.labels_of("tester") == expected

    # Without the page's token, the same request from the page's own origin is refused.
    status = page.evaluate(
        "id => fetch('/api/label', {method: 'POST', headers: {'Content-Type': 'application/json'},"
        " body: JSON.stringify({id, label: 'severe'})}).then(r => r.status)",
        order[7],
    )
    assert status == 403

    # The rest by keyboard, timing each key: the next image on screen and the label saved.
    timings = []
    start = time.perf_counter()
    for position in range(7, IMAGES):
        # After the last unlabelled image, the skipped one comes back.
        following = order[position + 1] if position + 1 < IMAGES else order[5]
        timings.append(_press_and_wait(page, "1234"[position % 4], following))
    assert page.inner_text("#current") == SKIP
    timings.append(_press_and_wait(page, "3", ""))
    total = time.perf_counter() - start
    assert page.is_visible("#finished")
    stored = session.db.labels_of("tester")
    assert len(stored) == IMAGES and SKIP not in stored.values()
    assert page.inner_text("#done") == str(IMAGES)
    round_trips = page.evaluate("window.__labeler.latencies")
    assert page.evaluate("window.__labeler.errors") == 0
    per_100 = total / len(timings) * 100
    median_key = statistics.median(timings) * 1000
    print(
        f"\nbrowser keypress -> next image shown and saved: median {median_key:.1f} ms, "
        f"max {max(timings) * 1000:.1f} ms over {len(timings)} keys; save round trip in the page: median "
        f"{statistics.median(round_trips):.1f} ms; 100 images by keyboard: {per_100:.1f} s (machine shared)"
    )


def test_image_that_fails_to_decode_is_left_out_and_labelling_goes_on(tmp_path, page):
    import io

    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(3)
    for name in ("a.png", "c.png"):
        Image.fromarray(rng.integers(0, 255, (40, 60, 3), dtype=np.uint8)).save(photos / name)
    full = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (200, 200, 3), dtype=np.uint8)).save(full, format="JPEG")
    (photos / "b.jpg").write_bytes(full.getvalue()[: len(full.getvalue()) // 2])  # header fine, data cut
    reports: list[str] = []
    with LabelDB(tmp_path / "labels.sqlite") as db:
        config = LabelConfig(images=(photos,), db=db.path, annotator="t", order="name")
        session = prepare(config, db, report=reports.append)
        assert reports == []  # only decoding finds it
        sock = bind("127.0.0.1", 0)
        server = make_server(create_app(session), sock)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.02)
        try:
            ids = {image.name: image.id for image in db.images()}
            page.goto(url_of(sock, "127.0.0.1"))
            page.wait_for_function("window.__labeler.ready")
            _press_and_wait(page, "2", ids["c.png"])  # b.jpg fails in the browser and is passed over
            assert "b.jpg" in page.inner_text("#toast")
            page.wait_for_function("document.getElementById('total').textContent === '2'")
            _press_and_wait(page, "3", "")
            assert db.labels_of("t") == {ids["a.png"]: "mild", ids["c.png"]: "moderate"}
            assert len(reports) == 1 and "b.jpg" in reports[0]
            assert db.image(ids["b.jpg"]).bad
        finally:
            server.should_exit = True
            thread.join(timeout=30)
            sock.close()

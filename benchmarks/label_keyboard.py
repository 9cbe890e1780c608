"""Labelling 100 photos by keyboard in a real browser (headless Chromium), against the bare API.

    python benchmarks/label_keyboard.py [--images 100] [--screenshot docs/label.png]

Serves 100 photos at 1152x864 (the example cars, flipped and cropped into distinct files) with the
real app on uvicorn, presses one level key per photo in Chromium and waits each time until the next
photo is on screen and the label is saved. Baseline, same run and server: the same 100 labels sent
as plain HTTP POSTs from Python, no browser. Prints per-key times and the ratio. With --screenshot,
also saves a picture of the page part-way through a labelling session.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from corrode.label.db import LabelDB
from corrode.label.server import TOKEN_HEADER, LabelConfig, bind, create_app, make_server, prepare, url_of

CHROMIUM = "/usr/bin/chromium"
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
EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "photos"


def make_photos(folder: Path, count: int) -> None:
    folder.mkdir(parents=True)
    sources = sorted(EXAMPLES.glob("*.jpg"))
    rng = np.random.default_rng(0)
    for i in range(count):
        if sources:
            image = Image.open(sources[i % len(sources)]).convert("RGB")
            if (i // len(sources)) % 2:
                image = ImageOps.mirror(image)
            width, height = image.size
            dx, dy = int(rng.integers(0, width // 12)), int(rng.integers(0, height // 12))
            image = image.crop((dx, dy, width - width // 12 + dx, height - height // 12 + dy)).resize(
                (1152, 864)
            )
        else:  # no example photos: a plain gradient of the same size
            y, x = np.mgrid[0:864, 0:1152]
            pixels = np.clip(rng.integers(40, 200, 3) + 0.1 * x[..., None] - 0.1 * y[..., None], 0, 255)
            image = Image.fromarray(pixels.astype(np.uint8))
        image.save(folder / f"photo_{i:03d}.jpg", quality=90)


class LiveServer:
    def __init__(self, photos: Path, db_path: Path, annotator: str) -> None:
        self.db = LabelDB(db_path)
        config = LabelConfig(images=(photos,), db=db_path, annotator=annotator, order="name")
        self.session = prepare(config, self.db, report=print)
        self.sock = bind("127.0.0.1", 0)
        self.url = url_of(self.sock, "127.0.0.1")
        self.server = make_server(create_app(self.session), self.sock)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join()
        self.sock.close()
        self.db.close()


def api_baseline(live: LiveServer) -> list[float]:
    """Seconds per label sent as a bare HTTP POST (what the server costs without a browser)."""
    times = []
    for image_id in live.session.image_ids:
        request = urllib.request.Request(
            live.url + "api/label",
            data=json.dumps({"id": image_id, "label": "mild"}).encode(),
            headers={"Content-Type": "application/json", TOKEN_HEADER: live.session.token},
        )
        start = time.perf_counter()
        with urllib.request.urlopen(request) as response:
            response.read()
        times.append(time.perf_counter() - start)
    return times


WAIT = (
    "id => { const img = document.getElementById('photo');"
    " return img.dataset.id === id && (img.hidden || img.complete) && window.__labeler.pending === 0; }"
)


def browser_run(page, live: LiveServer) -> tuple[list[float], float, list[float]]:
    """Per-key seconds, total seconds, and the page's floor: ms to fetch a tiny static file."""
    page.goto(live.url)
    page.wait_for_function("window.__labeler.ready")
    items = page.evaluate("fetch('/api/state').then(r => r.json()).then(s => s.items.map(i => i.id))")
    page.wait_for_function("document.getElementById('photo').complete")
    floor = page.evaluate(
        "async () => { const out = []; for (let i = 0; i < 30; i++) { const t = performance.now();"
        " await fetch('/style.css', {cache: 'no-store'}).then(r => r.text());"
        " out.push(performance.now() - t); }"
        " return out; }"
    )
    times = []
    start = time.perf_counter()
    for position, _ in enumerate(items):
        following = str(items[position + 1]) if position + 1 < len(items) else ""
        pressed = time.perf_counter()
        page.keyboard.press("1234"[min(3, position % 7 // 2)])
        page.wait_for_function(WAIT, arg=following, timeout=30_000)
        times.append(time.perf_counter() - pressed)
    return times, time.perf_counter() - start, floor


def screenshot(page, live: LiveServer, out: Path) -> None:
    """The page after some labelling: an unbalanced count per level, as in a real session."""
    page.goto(live.url)
    page.wait_for_function("window.__labeler.ready")
    for key in "1121131211421123112131":
        page.keyboard.press(key)
    page.keyboard.press("x")
    page.wait_for_function("window.__labeler.pending === 0")
    page.wait_for_function("document.getElementById('photo').complete")
    time.sleep(0.5)  # let the legend's flash fade
    out.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--screenshot", type=Path, default=None)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    work = Path(tempfile.mkdtemp(prefix="label-bench-"))
    try:
        make_photos(work / "photos", args.images)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            with LiveServer(work / "photos", work / "browser.sqlite", "bench") as live:
                keys, total, floor = browser_run(page, live)
                round_trips = page.evaluate("window.__labeler.latencies")
                painted = page.evaluate("window.__labeler.shown")
            with LiveServer(work / "photos", work / "api.sqlite", "bench") as live:
                bare = api_baseline(live)
            if args.screenshot:
                with LiveServer(work / "photos", work / "shot.sqlite", "maria") as live:
                    screenshot(page, live, args.screenshot)
                print(f"screenshot: {args.screenshot}")
            browser.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    key_ms = statistics.median(keys) * 1000
    bare_ms = statistics.median(bare) * 1000
    print(f"{len(keys)} photos 1152x864 labelled by keyboard in headless Chromium: {total:.1f} s")
    print(
        f"per key, until the next photo is shown and the label saved: median {key_ms:.1f} ms, "
        f"p90 {np.percentile(keys, 90) * 1000:.1f} ms, max {max(keys) * 1000:.1f} ms"
    )
    print(f"key -> next photo painted, measured in the page: median {statistics.median(painted):.1f} ms")
    print(f"save round trip measured in the page: median {statistics.median(round_trips):.1f} ms")
    floor_ms = statistics.median(floor)
    print(f"baseline 1, bare HTTP POST per label from Python (no browser): median {bare_ms:.1f} ms")
    print(f"baseline 2, the page fetching a tiny static file (any request's floor): median {floor_ms:.1f} ms")
    print(f"ratio key / bare POST: {key_ms / bare_ms:.2f}; key / page fetch floor: {key_ms / floor_ms:.2f}")


if __name__ == "__main__":
    main()

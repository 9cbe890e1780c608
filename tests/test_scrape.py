"""`corrode scrape` end to end against a real HTTP server on 127.0.0.1 (no internet needed).

The server serves every case the downloader must handle: good JPEG/PNG/WebP, one image under two
URLs, a resized near-duplicate, a truncated JPEG, HTML served as image/jpeg, a 404, a redirect,
a response slower than the timeout, a tiny image, a decompression-bomb PNG header, a connection
dropped mid-body, web pages that embed images, and Bing / Google result pages for icrawler's
own parsers.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import signal
import struct
import subprocess
import sys
import threading
import time
import zlib
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from corrode.cli import app
from corrode.errors import ConfigError, UsageError
from corrode.images import read_image
from corrode.scrape import ScrapeConfig, scrape
from corrode.scrape.manifest import MANIFEST, MANIFEST_COLUMNS, REJECTED

runner = CliRunner()
TIMEOUT = 0.5  # seconds: short, so the tests stay fast
SLOW = 2.0  # the slow route answers after this, well past TIMEOUT


def picture(seed: int, width: int, height: int) -> np.ndarray:
    """A smooth random picture: distinct seeds give perceptually distinct images."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC))


def encode(array: np.ndarray, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(width: int = 40_000, height: int = 40_000) -> bytes:
    """A valid PNG header claiming 1.6 gigapixels, with almost no data behind it."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + png_chunk(b"IEND", b"")
    )


SLOWISH = 24  # images behind a slow route, for the interrupted-run test


class Site:
    """Routes of the loopback server: path -> (status, headers, body) or a callable handler."""

    def __init__(self) -> None:
        big = picture(7, 384, 288)
        self.images = {
            "/good.jpg": encode(picture(1, 200, 160), "JPEG", quality=90),
            "/good.png": encode(picture(2, 180, 240), "PNG"),
            "/good.webp": encode(picture(3, 256, 192), "WEBP", quality=90),
            "/redirected.jpg": encode(picture(4, 220, 150), "JPEG", quality=90),
            "/other.png": encode(picture(5, 160, 160), "PNG"),
            "/late.jpg": encode(picture(6, 200, 200), "JPEG", quality=90),
            "/big.jpg": encode(big, "JPEG", quality=92),
            "/big-small.jpg": encode(
                np.asarray(Image.fromarray(big).resize((192, 144), Image.Resampling.LANCZOS)),
                "JPEG",
                quality=75,
            ),
            "/tiny.png": encode(picture(8, 40, 30), "PNG"),
            "/bomb.png": bomb_png(),
        }
        for seed in range(20):
            self.images[f"/many/{seed}.jpg"] = encode(picture(100 + seed, 160, 128), "JPEG", quality=85)
        self.images["/copy.jpg"] = self.images["/good.jpg"]
        self.images["/truncated.jpg"] = self.images["/good.jpg"][: len(self.images["/good.jpg"]) * 6 // 10]
        self.dropped_body = encode(picture(9, 400, 300), "PNG")
        self.routes: dict[str, object] = {
            path: (200, {"Content-Type": _type(path)}, body) for path, body in self.images.items()
        }
        self.routes["/html.jpg"] = (
            200,
            {"Content-Type": "image/jpeg"},
            b"<!DOCTYPE html><html><body>Not here</body></html>",
        )
        self.routes["/redirect.jpg"] = (302, {"Location": "/redirected.jpg"}, b"")
        self.routes["/slow.jpg"] = self._slow
        self.routes["/dropped.png"] = self._dropped
        self.routes["/page.html"] = (200, {"Content-Type": "text/html"}, self.page_html())
        self.routes["/late-page.html"] = self._late_page
        self.routes["/bing/images/async"] = self._bing
        self.routes["/google/search"] = self._google
        self.routes["/flickr/services/rest/"] = self._flickr
        self.routes["/baidu/search/acjson"] = self._baidu
        for seed in range(SLOWISH):
            body = encode(picture(200 + seed, 160, 128), "JPEG", quality=85)
            self.routes[f"/slowish/{seed}.jpg"] = partial(self._delayed, body)
        # icrawler's GoogleParser un-escapes every URL it finds; a bad escape kills its thread.
        self.routes["/crashing-google/search"] = (
            200,
            {"Content-Type": "text/html"},
            b'<html><script>var a = ["http://127.0.0.1/x\\u12.jpg"];</script></html>',
        )
        self.routes["/broken-google/search"] = (
            200,
            {"Content-Type": "text/html"},
            b"<html><body><div>consent page</div></body></html>",
        )
        self.requests: list[str] = []
        self.times: list[tuple[float, str]] = []
        self.flickr_calls: list[dict] = []

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def page_html(self) -> bytes:
        return (
            b'<html><head><meta property="og:image" content="/good.webp"></head><body>'
            b'<img src="good.jpg" alt="a"><img srcset="tiny.png 40w, other.png 160w">'
            b'<a href="/good.png">full size</a><a href="/about.html">about</a>'
            b'<img src="data:image/png;base64,AAAA"></body></html>'
        )

    # -- handlers that are not a fixed answer ---------------------------------------------------

    def _slow(self, handler: BaseHTTPRequestHandler) -> None:
        time.sleep(SLOW)
        handler.send_response(200)
        handler.send_header("Content-Type", "image/jpeg")
        handler.send_header("Content-Length", str(len(self.images["/good.jpg"])))
        handler.end_headers()
        handler.wfile.write(self.images["/good.jpg"])

    def _dropped(self, handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "image/png")
        handler.send_header("Content-Length", str(len(self.dropped_body)))
        handler.end_headers()
        handler.wfile.write(self.dropped_body[: len(self.dropped_body) // 2])
        handler.wfile.flush()
        handler.close_connection = True
        handler.connection.shutdown(2)

    def _late_page(self, handler: BaseHTTPRequestHandler) -> None:
        time.sleep(1.0)  # longer than the downloader's queue polling: the crawl must wait for it
        _answer(
            handler, 200, {"Content-Type": "text/html"}, b'<html><body><img src="/late.jpg"></body></html>'
        )

    def _bing(self, handler: BaseHTTPRequestHandler) -> None:
        query = dict(part.split("=", 1) for part in urlsplit(handler.path).query.split("&") if "=" in part)
        if query.get("first", "0") != "0":
            _answer(handler, 200, {"Content-Type": "text/html"}, b"<html><body></body></html>")
            return
        divs = "".join(
            '<div class="imgpt"><a class="iusc" m=\'{&quot;purl&quot;:&quot;http://example.org/p&quot;,'
            f"&quot;murl&quot;:&quot;{self.url(path)}&quot;,&quot;turl&quot;:&quot;x&quot;}}'></a></div>"
            for path in ("/good.jpg", "/big.jpg", "/html.jpg")
        )
        _answer(handler, 200, {"Content-Type": "text/html"}, f"<html><body>{divs}</body></html>".encode())

    def _flickr(self, handler: BaseHTTPRequestHandler) -> None:
        query = parse_qs(urlsplit(handler.path).query)
        self.flickr_calls.append(query)
        if query["method"] == ["flickr.photos.search"]:
            body = {"stat": "ok", "photos": {"photo": [{"id": "1", "owner": "ann"}, {"id": "2"}]}}
        else:
            path = {"1": "/good.png", "2": "/other.png"}[query["photo_id"][0]]
            sizes = [
                {"label": "Small", "source": self.url("/tiny.png")},
                {"label": "Large", "source": self.url(path)},
            ]
            body = {"stat": "ok", "sizes": {"size": sizes}}
        _answer(handler, 200, {"Content-Type": "application/json"}, json.dumps(body).encode())

    def _delayed(self, body: bytes, handler: BaseHTTPRequestHandler) -> None:
        # Slow enough that an interrupt after the third row always lands mid-run, even on a busy CI box.
        time.sleep(0.6)
        _answer(handler, 200, {"Content-Type": "image/jpeg"}, body)

    def _baidu(self, handler: BaseHTTPRequestHandler) -> None:
        query = parse_qs(urlsplit(handler.path).query)
        items = (
            [{"hoverURL": self.url(p)} for p in ("/good.webp", "/missing.jpg")]
            if query["pn"] == ["0"]
            else []
        )
        _answer(handler, 200, {"Content-Type": "application/json"}, json.dumps({"data": items}).encode())

    def _google(self, handler: BaseHTTPRequestHandler) -> None:
        urls = ", ".join(f'["{self.url(p)}", 200, 160]' for p in ("/good.jpg", "/good.png", "/tiny.png"))
        body = f"<html><head><script>AF_initDataCallback({{data: [{urls}]}});</script></head></html>"
        _answer(handler, 200, {"Content-Type": "text/html"}, body.encode())


def _type(path: str) -> str:
    return {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}[path.rsplit(".", 1)[-1]]


def _answer(handler: BaseHTTPRequestHandler, status: int, headers: dict, body: bytes) -> None:
    handler.send_response(status)
    for key, value in headers.items():
        handler.send_header(key, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


@pytest.fixture(scope="module")
def site():
    content = Site()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            path = urlsplit(self.path).path
            content.requests.append(path)
            content.times.append((time.monotonic(), path))
            route = content.routes.get(path)
            try:
                if route is None:
                    _answer(self, 404, {"Content-Type": "text/html"}, b"<html>not found</html>")
                elif callable(route):
                    route(self)
                else:
                    _answer(self, *route)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    content.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield content
    server.shutdown()
    server.server_close()


def url_list(tmp_path: Path, site: Site, paths: list[str], name: str = "list") -> Path:
    """A URL list file; entries starting with '/' are paths on the test server, others stay as they are."""
    path = tmp_path / f"{name}.txt"
    lines = [site.url(p) if p.startswith("/") else p for p in paths]
    path.write_text("# test list\n\n" + "\n".join(lines) + "\n")
    return path


def config(out: Path, sources: Path, **overrides) -> ScrapeConfig:
    options = {
        "engine": "urls",
        "out": out,
        "sources": sources,
        "timeout": TIMEOUT,
        "retries": 0,
        "threads": 4,
        "max_images": 0,
    }
    options.update(overrides)
    return ScrapeConfig(**options)


def manifest_rows(out: Path, name: str = MANIFEST) -> list[dict[str, str]]:
    with (out / name).open(newline="") as handle:
        return list(csv.DictReader(handle))


def by_url(rows: list[dict[str, str]], site: Site) -> dict[str, dict[str, str]]:
    return {row["url"].removeprefix(site.base): row for row in rows}


def leftovers(out: Path) -> list[Path]:
    return [p for p in out.rglob("*") if p.name.startswith(".") or ".part" in p.name]


ALL_CASES = [
    "/good.jpg",
    "/good.png",
    "/good.webp",
    "/copy.jpg",
    "/big.jpg",
    "/big-small.jpg",
    "/truncated.jpg",
    "/html.jpg",
    "/missing.jpg",
    "/redirect.jpg",
    "/slow.jpg",
    "/tiny.png",
    "/bomb.png",
    "/dropped.png",
    "not a url",
]


def test_every_case_is_kept_or_rejected_with_its_reason(site: Site, tmp_path: Path) -> None:
    out = tmp_path / "raw"
    summary = scrape(config(out, url_list(tmp_path, site, ALL_CASES, "cars")))

    kept = by_url(manifest_rows(out), site)
    # /good.jpg and /copy.jpg are the same bytes: whichever arrives first is kept (thread timing).
    identical = {"/good.jpg", "/copy.jpg"}
    assert len(identical & set(kept)) == 1
    assert set(kept) - identical == {"/good.png", "/good.webp", "/big.jpg", "/redirect.jpg"}
    rejected = by_url(manifest_rows(out, REJECTED), site)
    expected = {
        "/truncated.jpg": ("content", "truncated"),
        "/html.jpg": ("content", "HTML page served as image/jpeg"),
        "/missing.jpg": ("http", "HTTP 404"),
        "/slow.jpg": ("network", "timed out"),
        "/tiny.png": ("size", "too small: 40x30"),
        "/bomb.png": ("size", "too many pixels"),
        "/dropped.png": ("network", "connection dropped"),
        "not a url": ("content", "not an http(s) URL"),
    }
    for path, (kind, words) in expected.items():
        assert rejected[path]["kind"] == kind, (path, rejected[path])
        assert words in rejected[path]["reason"], (path, rejected[path])
    # One of the two identical files and the smaller near-duplicate are duplicates; which URL of
    # the identical pair arrived first depends on thread timing, the kept bytes do not.
    assert (
        rejected["/big-small.jpg"]["kind"] == "duplicate"
        or "replaced" in rejected["/big-small.jpg"]["reason"]
    )
    (copy,) = [rejected[path] for path in identical - set(kept)]
    assert copy["kind"] == "duplicate" and "same bytes as cars/" in copy["reason"]

    query = summary.queries[0]
    assert query.folder == "cars" and query.new == 5 and query.found == 14  # "not a url" never fetched
    assert query.duplicates + query.replaced == 2 and query.rejected == 8
    assert query.problem is not None and "rejected" in query.problem  # a user's own list: failures count

    for path, row in kept.items():
        file = out / row["file"]
        data = file.read_bytes()
        assert row["sha256"] == hashlib.sha256(data).hexdigest()
        assert file.name.startswith(row["sha256"][:16]) and file.parent.name == "cars"
        assert int(row["bytes"]) == len(data)
        height, width = read_image(file).shape[:2]
        assert (int(row["width"]), int(row["height"])) == (width, height)
        assert len(row["phash"]) == 16 and row["query"] == "cars" and row["engine"] == "urls"
        served = {"/redirect.jpg": "/redirected.jpg", "/copy.jpg": "/good.jpg"}.get(path, path)
        assert data == site.images[served]
    assert kept["/good.webp"]["file"].endswith(".webp") and kept["/good.png"]["file"].endswith(".png")
    assert list(manifest_rows(out)[0]) == list(MANIFEST_COLUMNS)
    files = sorted(p.relative_to(out).as_posix() for p in (out / "cars").iterdir())
    assert files == sorted(row["file"] for row in kept.values())
    assert leftovers(out) == []


def test_rerun_adds_nothing_and_fetches_nothing_again(site: Site, tmp_path: Path) -> None:
    out = tmp_path / "raw"
    sources = url_list(tmp_path, site, ["/good.jpg", "/good.png", "/copy.jpg", "/tiny.png", "/html.jpg"])
    first = scrape(config(out, sources))
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    requests_before = len(site.requests)

    second = scrape(config(out, sources))

    assert first.new == 2 and second.new == 0
    assert second.queries[0].skipped == 5 and second.queries[0].found == 5
    assert second.queries[0].problem is None
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert len(site.requests) == requests_before  # nothing was downloaded again


def test_second_query_deduplicates_against_the_first_and_keeps_the_largest(
    site: Site, tmp_path: Path
) -> None:
    out = tmp_path / "raw"
    scrape(config(out, url_list(tmp_path, site, ["/good.jpg", "/big-small.jpg"], "rusty car")))
    assert {r["url"].removeprefix(site.base) for r in manifest_rows(out)} == {"/good.jpg", "/big-small.jpg"}
    small_file = out / by_url(manifest_rows(out), site)["/big-small.jpg"]["file"]

    summary = scrape(
        config(out, url_list(tmp_path, site, ["/copy.jpg", "/big.jpg", "/other.png"], "car rust"))
    )

    query = summary.queries[0]
    assert query.folder == "car-rust" and query.kept == 2 and query.replaced == 1 and query.duplicates == 1
    kept = by_url(manifest_rows(out), site)
    assert set(kept) == {"/good.jpg", "/big.jpg", "/other.png"}
    assert kept["/good.jpg"]["file"].startswith("rusty-car/") and kept["/big.jpg"]["file"].startswith(
        "car-rust/"
    )
    assert not small_file.exists()  # the smaller near-duplicate made room for the larger one
    rejected = by_url(manifest_rows(out, REJECTED), site)
    assert "same bytes as rusty-car/" in rejected["/copy.jpg"]["reason"]
    assert "replaced by larger near-duplicate car-rust/" in rejected["/big-small.jpg"]["reason"]


def test_smaller_near_duplicate_arriving_second_is_refused(site: Site, tmp_path: Path) -> None:
    out = tmp_path / "raw"
    summary = scrape(config(out, url_list(tmp_path, site, ["/big.jpg", "/big-small.jpg"]), threads=1))
    assert summary.queries[0].new == 1 and summary.queries[0].duplicates == 1
    rejected = by_url(manifest_rows(out, REJECTED), site)
    assert "near-duplicate of list/" in rejected["/big-small.jpg"]["reason"]
    assert "distance" in rejected["/big-small.jpg"]["reason"]


def test_earlier_images_in_the_folder_count_even_without_a_manifest(site: Site, tmp_path: Path) -> None:
    out = tmp_path / "raw"
    (out / "by-hand").mkdir(parents=True)
    (out / "by-hand" / "mine.jpg").write_bytes(site.images["/good.jpg"])
    summary = scrape(config(out, url_list(tmp_path, site, ["/copy.jpg", "/other.png"])))
    assert summary.queries[0].new == 1 and summary.queries[0].duplicates == 1
    assert (out / "by-hand" / "mine.jpg").exists()


def test_dropped_connection_leaves_no_partial_file(site: Site, tmp_path: Path) -> None:
    out = tmp_path / "raw"
    summary = scrape(config(out, url_list(tmp_path, site, ["/dropped.png"]), retries=1))
    assert summary.new == 0 and summary.queries[0].problem
    assert [p for p in out.rglob("*") if p.is_file() and p.name not in (MANIFEST, REJECTED)] == []
    assert not (out / MANIFEST).exists()
    assert "connection dropped mid-body" in manifest_rows(out, REJECTED)[0]["reason"]


def test_max_counts_new_images(site: Site, tmp_path: Path) -> None:
    out = tmp_path / "raw"
    paths = [f"/many/{seed}.jpg" for seed in range(20)]
    summary = scrape(config(out, url_list(tmp_path, site, paths), max_images=3, threads=2))
    assert summary.new == 3 and len(manifest_rows(out)) == 3
    again = scrape(config(out, url_list(tmp_path, site, paths), max_images=3, threads=2))
    assert again.new == 3 and len(manifest_rows(out)) == 6  # a rerun continues with new URLs


def test_pages_engine_finds_embedded_and_linked_images(site: Site, tmp_path: Path) -> None:
    out = tmp_path / "raw"
    sources = url_list(tmp_path, site, ["/page.html", "/late-page.html"], "pages")
    summary = scrape(config(out, sources, engine="pages", threads=2, timeout=5.0))
    kept = by_url(manifest_rows(out), site)
    # og:image, img src, the largest srcset entry, a linked image, and the slow page's image.
    assert set(kept) == {"/good.webp", "/good.jpg", "/other.png", "/good.png", "/late.jpg"}
    assert kept["/good.jpg"]["page_url"] == site.url("/page.html")
    assert summary.queries[0].pages == 2 and summary.queries[0].problem is None


def test_resized_copies_keep_originals(site: Site, tmp_path: Path) -> None:
    out = tmp_path / "raw"
    scrape(config(out, url_list(tmp_path, site, ["/good.jpg", "/good.png"]), resize=64))
    for row in manifest_rows(out):
        original = out / row["file"]
        copy = out / "resized-64" / row["file"]
        assert original.read_bytes() in site.images.values()
        assert min(read_image(copy).shape[:2]) == 64
    # A later run with another size backfills copies for every image already kept.
    summary = scrape(config(out, url_list(tmp_path, site, ["/good.jpg"]), resize=32))
    assert summary.resized == 2 and len(list((out / "resized-32").rglob("*.*"))) == 2


def test_bing_result_pages_go_through_icrawlers_parser(site: Site, tmp_path: Path) -> None:
    out = tmp_path / "raw"
    cfg = ScrapeConfig(
        queries=("rusty car",),
        engine="bing",
        out=out,
        search_url=site.url("/bing"),
        timeout=TIMEOUT,
        retries=0,
        max_images=5,
        filters={"type": "photo"},
    )
    summary = scrape(cfg)
    query = summary.queries[0]
    assert query.folder == "rusty-car" and query.pages >= 1 and query.new == 2 and query.rejected == 1
    kept = by_url(manifest_rows(out), site)
    assert set(kept) == {"/good.jpg", "/big.jpg"} and kept["/good.jpg"]["engine"] == "bing"
    assert (
        kept["/good.jpg"]["query"] == "rusty car" and kept["/good.jpg"]["page_url"] == "http://example.org/p"
    )
    assert query.problem is None


def test_google_result_pages_go_through_icrawlers_parser(site: Site, tmp_path: Path) -> None:
    out = tmp_path / "raw"
    cfg = ScrapeConfig(
        queries=("car rust",),
        engine="google",
        out=out,
        search_url=site.url("/google"),
        timeout=TIMEOUT,
        retries=0,
        max_images=5,
    )
    summary = scrape(cfg)
    assert set(by_url(manifest_rows(out), site)) == {"/good.jpg", "/good.png"}
    assert summary.queries[0].rejected == 1 and summary.queries[0].problem is None


def test_baidu_results_go_through_icrawlers_parser(site: Site, tmp_path: Path) -> None:
    out = tmp_path / "raw"
    cfg = ScrapeConfig(
        queries=("锈车",),
        engine="baidu",
        out=out,
        search_url=site.url("/baidu"),
        timeout=TIMEOUT,
        retries=0,
        max_images=3,
        filters={"size": "large"},
    )
    summary = scrape(cfg)
    assert set(by_url(manifest_rows(out), site)) == {"/good.webp"}
    assert summary.queries[0].folder == "锈车" and summary.queries[0].rejected == 1


def test_flickr_api_goes_through_icrawlers_feeder_and_parser(
    site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLICKR_APIKEY", "key-from-env")
    out = tmp_path / "raw"
    cfg = ScrapeConfig(
        queries=("rusty truck",),
        engine="flickr",
        out=out,
        search_url=site.url("/flickr"),
        timeout=TIMEOUT,
        retries=0,
        max_images=2,
        filters={"license": "4,5"},
    )
    summary = scrape(cfg)
    kept = by_url(manifest_rows(out), site)
    assert set(kept) == {"/good.png", "/other.png"}  # the largest size listed
    assert kept["/good.png"]["page_url"] == "https://www.flickr.com/photos/ann/1"
    assert kept["/other.png"]["page_url"] == ""
    assert all("key-from-env" not in path.read_text() for path in out.glob("*.csv"))
    assert summary.queries[0].problem is None
    search = next(call for call in site.flickr_calls if call["method"] == ["flickr.photos.search"])
    assert search["api_key"] == ["key-from-env"] and search["text"] == ["rusty truck"]
    assert search["license"] == ["4,5"]
    explicit = ScrapeConfig(
        queries=("car",),
        engine="flickr",
        out=tmp_path / "other",
        flickr_key="key-option",
        search_url=site.url("/flickr"),
        timeout=TIMEOUT,
        retries=0,
        max_images=1,
    )
    scrape(explicit)
    assert site.flickr_calls[-1]["api_key"] == ["key-option"]


def test_broken_engine_says_so_and_exits_non_zero(site: Site, tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "scrape",
            "rusty car",
            "--engine",
            "google",
            "--out",
            str(tmp_path / "raw"),
            "--search-url",
            site.url("/broken-google"),
            "--timeout",
            str(TIMEOUT),
        ],
    )
    assert result.exit_code == 1, result.output
    output = " ".join(result.output.split())
    assert "google returned no image URLs" in output and "Try --engine bing" in output


def test_parser_crash_is_reported_not_swallowed(site: Site, tmp_path: Path) -> None:
    cfg = ScrapeConfig(
        queries=("car",),
        engine="google",
        out=tmp_path / "raw",
        search_url=site.url("/crashing-google"),
        timeout=TIMEOUT,
        retries=0,
        max_images=5,
    )
    query = scrape(cfg).queries[0]
    assert query.found == 0 and query.pages >= 1
    assert any("parser failed (UnicodeDecodeError" in error for error in query.engine_errors)
    assert "parser failed" in query.problem and "Try --engine bing" in query.problem


def test_cli_urls_engine_json_summary_and_exit_codes(site: Site, tmp_path: Path) -> None:
    out = tmp_path / "raw"
    good = url_list(tmp_path, site, ["/good.jpg", "/good.png"], "good")
    result = runner.invoke(
        app,
        [
            "scrape",
            "--engine",
            "urls",
            "--from",
            str(good),
            "--out",
            str(out),
            "--json",
            "--timeout",
            str(TIMEOUT),
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert data["new"] == 2 and data["queries"][0]["kept"] == 2

    piped = runner.invoke(
        app,
        ["scrape", "--engine", "urls", "--from", "-", "--out", str(out), "--timeout", str(TIMEOUT)],
        input=site.url("/other.png") + "\n",
    )
    assert piped.exit_code == 0 and (out / "stdin").is_dir()

    bad = url_list(tmp_path, site, ["/good.webp", "/tiny.png"], "mixed")
    result = runner.invoke(
        app, ["scrape", "--engine", "urls", "--from", str(bad), "--out", str(out), "--timeout", str(TIMEOUT)]
    )
    assert result.exit_code == 1
    output = " ".join(result.output.split())
    assert "tiny.png: too small: 40x30" in output and "1 of 2 image URL(s) rejected" in output


def test_cli_usage_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLICKR_APIKEY", raising=False)
    cases = [
        ["scrape", "--engine", "urls", "--out", str(tmp_path)],  # no --from
        ["scrape", "--engine", "bing", "--out", str(tmp_path)],  # no query
        ["scrape", "car", "--engine", "flickr", "--out", str(tmp_path)],  # no key
        ["scrape", "car", "--engine", "bing", "--filter", "colour=red", "--out", str(tmp_path)],
        ["scrape", "car", "--engine", "bing", "--filter", "type=cartoon", "--out", str(tmp_path)],
        ["scrape", "car", "--engine", "bing", "--filter", "type", "--out", str(tmp_path)],
        ["scrape", "car", "--engine", "altavista", "--out", str(tmp_path)],
        ["scrape", "--engine", "urls", "--from", str(tmp_path / "missing.txt"), "--out", str(tmp_path)],
        [
            "scrape",
            "one",
            "two",
            "--engine",
            "urls",
            "--from",
            str(tmp_path / "a.txt"),
            "--out",
            str(tmp_path),
        ],
    ]
    for args in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert "error" in result.output.lower()


def test_config_validation() -> None:
    with pytest.raises(ConfigError):
        ScrapeConfig(queries=("car",), threads=0)
    with pytest.raises(ConfigError):
        ScrapeConfig(queries=("car",), near_distance=65)
    with pytest.raises(UsageError):
        ScrapeConfig(queries=("car",), engine="google", filters={"license": "any"})
    assert ScrapeConfig(queries=("car",), engine="flickr", filters={"license": "4"}).filters["license"] == "4"


def test_idle_timeout_counts_from_the_last_arrival_and_hosts_get_their_delay(
    site: Site, tmp_path: Path
) -> None:
    # Five images 0.4 s apart take 1.6 s: icrawler's max_idle_time of 1 s, counted from the
    # start, would stop this healthy crawl after the second or third image.
    out = tmp_path / "raw"
    paths = [f"/many/{seed}.jpg" for seed in range(10, 15)]
    summary = scrape(
        config(out, url_list(tmp_path, site, paths), idle_timeout=1.0, host_delay=0.4, threads=3)
    )
    assert summary.new == 5
    starts = sorted(moment for moment, path in site.times if path in paths)[-5:]
    gaps = [later - earlier for earlier, later in zip(starts, starts[1:], strict=False)]
    assert min(gaps) >= 0.3, gaps  # 0.4 s between request starts, minus connection jitter


def test_quiet_by_default_verbose_shows_icrawler_log(site: Site, tmp_path: Path) -> None:
    sources = url_list(tmp_path, site, ["/good.jpg"])
    quiet = runner.invoke(
        app, ["scrape", "--engine", "urls", "--from", str(sources), "--out", str(tmp_path / "a")]
    )
    assert quiet.exit_code == 0 and "downloader" not in quiet.output and "feeder" not in quiet.output
    assert "list: 1 new" in " ".join(quiet.output.split())
    loud = runner.invoke(
        app, ["scrape", "--engine", "urls", "--from", str(sources), "--out", str(tmp_path / "b"), "--verbose"]
    )
    assert loud.exit_code == 0 and "downloader kept" in loud.output and "feeder" in loud.output


def test_interrupted_run_leaves_a_valid_manifest_and_no_partial_file(site: Site, tmp_path: Path) -> None:
    out = tmp_path / "raw"
    sources = url_list(tmp_path, site, [f"/slowish/{seed}.jpg" for seed in range(SLOWISH)])
    command = [
        sys.executable,
        "-m",
        "corrode",
        "scrape",
        "--engine",
        "urls",
        "--from",
        str(sources),
        "--out",
        str(out),
        "--threads",
        "3",
    ]
    # A shell starts background jobs with SIGINT ignored, and children inherit that: give this child
    # the default disposition so the test's Ctrl-C reaches it however the test run was started.
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        if (out / MANIFEST).exists() and len(manifest_rows(out)) >= 3:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr.decode()
    rows = manifest_rows(out)
    assert 3 <= len(rows) < SLOWISH
    for row in rows:
        data = (out / row["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == row["sha256"]
        read_image(out / row["file"])  # complete
    # A download cut short can leave only a hidden temporary file, which the next run removes.
    on_disk = sorted(p.relative_to(out).as_posix() for p in out.rglob("[!.]*") if p.is_file())
    # Images that finished after the last row was written are complete too, and are indexed next run.
    assert set(row["file"] for row in rows) <= set(on_disk)
    for name in on_disk:
        if name not in (MANIFEST, REJECTED):
            read_image(out / name)
    rest = scrape(config(out, sources, timeout=5.0, threads=8))  # completes the job, fetching nothing twice
    assert rest.new + len(rows) + rest.queries[0].duplicates == SLOWISH and leftovers(out) == []

"""`corrode scrape` against hostile web input, on a local server (127.0.0.1 only, bounded).

Never a write outside --out, whatever a URL or a Content-Disposition says; an endless body, or one
past --max-bytes, is cut off and rejected without being held in memory.
"""

from __future__ import annotations

import contextlib
import io
import threading
import time
import tracemalloc
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np
import pytest
import requests
from PIL import Image
from typer.testing import CliRunner

from corrode.cli import app
from corrode.scrape.checks import Rejected
from corrode.scrape.downloader import fetch
from corrode.scrape.folder import slug

runner = CliRunner()
TIMEOUT = 3.0
MAX_BYTES = 256 * 1024
ENDLESS_CAP = 64 * 1024 * 1024  # the server gives up after this much, whatever the client does
ENDLESS_SECONDS = 20.0


def _jpeg(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8).repeat(24, 0).repeat(24, 1)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


class Hostile:
    """What the server sends for each path, and how many bytes each endless answer got out."""

    def __init__(self, escape_target: Path) -> None:
        self.base = ""
        self.sent: dict[str, int] = {}
        self.finished = threading.Event()
        target = str(escape_target)
        self.dispositions = {
            "/dotdot.jpg": 'attachment; filename="../../../escaped.jpg"',
            "/absolute.jpg": f'attachment; filename="{target}"',
            "/encoded.jpg": "attachment; filename*=UTF-8''..%2F..%2F..%2Fencoded-escape.jpg",
            "/backslash.jpg": 'attachment; filename="..\\\\..\\\\windows-escape.jpg"',
        }

    def url(self, path: str) -> str:
        return self.base + path

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        raw = urlsplit(handler.path).path
        path = unquote(raw)
        if raw.startswith("/endless"):
            self._endless(handler, raw)
        elif raw == "/declared-too-big":
            handler.send_response(200)
            handler.send_header("Content-Type", "image/jpeg")
            handler.send_header("Content-Length", str(50 * MAX_BYTES))
            handler.end_headers()
            handler.wfile.write(b"\xff\xd8" + bytes(1024))
        elif raw == "/undeclared-too-big":
            handler.send_response(200)
            handler.send_header("Content-Type", "image/jpeg")
            handler.send_header("Connection", "close")
            handler.end_headers()
            self._stream(handler, raw, 4 * MAX_BYTES)
        else:
            body = _jpeg(zlib.crc32(path.encode()))
            handler.send_response(200)
            handler.send_header("Content-Type", "image/jpeg")
            handler.send_header("Content-Length", str(len(body)))
            if raw in self.dispositions:
                handler.send_header("Content-Disposition", self.dispositions[raw])
            handler.end_headers()
            handler.wfile.write(body)

    def _endless(self, handler: BaseHTTPRequestHandler, raw: str) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "image/jpeg")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        chunk = b"\xff" * 16384
        framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
        sent, start = 0, time.monotonic()
        try:
            handler.wfile.write(b"4\r\n\xff\xd8\xff\xe0\r\n")
            while sent < ENDLESS_CAP and time.monotonic() - start < ENDLESS_SECONDS:
                handler.wfile.write(framed)
                sent += len(chunk)
        finally:
            self.sent[raw] = sent
            self.finished.set()

    def _stream(self, handler: BaseHTTPRequestHandler, raw: str, total: int) -> None:
        sent = 0
        try:
            handler.wfile.write(b"\xff\xd8")
            while sent < total:
                handler.wfile.write(bytes(16384))
                sent += 16384
        finally:
            self.sent[raw] = sent


@contextlib.contextmanager
def serving(content: Hostile) -> Iterator[Hostile]:
    """Serve `content` on 127.0.0.1 (a free port) for the duration of the block."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                content.handle(self)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    content.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield content
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def hostile(tmp_path: Path) -> Iterator[Hostile]:
    with serving(Hostile(tmp_path / "absolute-escape.jpg")) as content:
        yield content


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file() or p.is_symlink()}


def _scrape(tmp_path: Path, hostile: Hostile, paths: list[str], *extra: str):
    listing = tmp_path / "lists" / "hostile.txt"
    listing.parent.mkdir(exist_ok=True)
    listing.write_text("".join(f"{hostile.url(p) if p.startswith('/') else p}\n" for p in paths))
    out = tmp_path / "work" / "raw"
    args = [
        "scrape",
        "--engine",
        "urls",
        "--from",
        str(listing),
        "--out",
        str(out),
        "--timeout",
        str(TIMEOUT),
    ]
    return out, runner.invoke(app, [*args, "--retries", "0", *extra])


TRAVERSALS = [
    "/dotdot.jpg",
    "/absolute.jpg",
    "/encoded.jpg",
    "/backslash.jpg",
    "/a/b/../../../../etc/passwd.jpg",
    "/a/%2e%2e/%2e%2e/%2e%2e/dot-encoded.jpg",
    "/a/..%2f..%2f..%2fslash-encoded.jpg",
    "/%2Ftmp%2Fabsolute-in-url.jpg",
    "/..%5c..%5cbackslash-in-url.jpg",
]


def test_nothing_is_written_outside_out(hostile: Hostile, tmp_path: Path) -> None:
    before = _files(tmp_path)
    out, result = _scrape(tmp_path, hostile, TRAVERSALS)
    assert result.exit_code == 0, result.output
    written = _files(tmp_path) - before
    outside = [
        p for p in written if not p.resolve().is_relative_to(out.resolve()) and p.parent.name != "lists"
    ]
    assert outside == [] and not (tmp_path / "lists" / "hostile.txt").with_name("escaped.jpg").exists()
    assert not (tmp_path / "absolute-escape.jpg").exists()
    images = [p for p in written if p.suffix == ".jpg"]
    # Every URL gives a distinct picture: each is kept once, under its content hash, in one folder.
    assert len(images) == len(TRAVERSALS)
    assert all(len(p.stem) == 16 and all(c in "0123456789abcdef" for c in p.stem) for p in images)
    assert {p.parent for p in images} == {out / "hostile"}


@pytest.mark.parametrize(
    ("query", "folder"),
    [("../../etc", "etc"), ("/absolute/path", "absolute-path"), ("..", "query"), ("a\\..\\b", "a-b")],
)
def test_a_query_names_a_folder_inside_out(query: str, folder: str) -> None:
    assert slug(query) == folder


@pytest.mark.parametrize("path", ["/endless", "/declared-too-big", "/undeclared-too-big"])
def test_a_body_past_max_bytes_is_cut_off_and_rejected(hostile: Hostile, tmp_path: Path, path: str) -> None:
    before = _files(tmp_path)
    out, result = _scrape(tmp_path, hostile, [path, "/fine.jpg"], "--max-bytes", str(MAX_BYTES))
    assert result.exit_code == 1, result.output
    assert "too large" in " ".join(result.output.split())
    written = _files(tmp_path) - before
    assert [p.suffix for p in written if p.parent == out / "hostile"] == [".jpg"]  # only fine.jpg
    assert not [p for p in out.rglob("*") if ".part" in p.name or p.name.startswith(".download")]


def test_an_endless_body_is_not_held_in_memory(hostile: Hostile) -> None:
    """fetch() reads at most --max-bytes (plus one chunk) into memory, then drops the connection."""
    session = requests.Session()
    tracemalloc.start()
    try:
        with pytest.raises(Rejected, match="too large"):
            fetch(session, hostile.url("/endless"), timeout=TIMEOUT, max_bytes=MAX_BYTES)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        session.close()
    assert peak < 8 * MAX_BYTES, f"peak {peak:,} bytes for a {MAX_BYTES:,}-byte limit"
    # The server stops writing once the client has gone (socket buffers aside), long before its cap.
    assert hostile.finished.wait(ENDLESS_SECONDS + 5)
    assert hostile.sent["/endless"] < ENDLESS_CAP // 2

"""The labeling web app: a Starlette app served by uvicorn on 127.0.0.1.

Security, for a server anyone on the machine (and any web page in its browser) can reach:
- images are served only by their database id; no file path ever comes from a URL;
- requests that change labels must carry the page's per-session token in a header, which a
  cross-site page cannot set without a CORS preflight this app never answers;
- the Host header must name the address the server was started on (DNS-rebinding guard).
"""

from __future__ import annotations

import html
import io
import ipaddress
import secrets
import socket
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from corrode import levels
from corrode.config import require
from corrode.errors import UsageError, WriteError
from corrode.images import ImageError, image_size, list_images, read_image
from corrode.label.db import CHOICES, REJECT, SKIP, LabelDB, check_annotator
from corrode.label.order import ORDERS, order_images, read_scores

STATIC = Path(__file__).parent / "static"
TOKEN_HEADER = "X-Label-Token"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
KEYS = {REJECT: "x", SKIP: "s"}
Report = Callable[[str], None]


@dataclass(frozen=True)
class LabelConfig:
    images: tuple[Path, ...]
    db: Path
    annotator: str
    host: str = "127.0.0.1"
    port: int = 0  # 0: any free port
    order: str = "random"
    scores: Path | None = None  # a classifier's per-level scores (CSV) for --order uncertain
    max_side: int = 1600  # longest side of the image sent to the browser
    recursive: bool = True

    def __post_init__(self) -> None:
        require(bool(self.images), "no images given")
        require(0 <= self.port <= 65535, f"port must be 0..65535, got {self.port}")
        require(self.order in ORDERS, f"order must be one of {', '.join(ORDERS)}, got {self.order!r}")
        require(self.max_side >= 64, f"max_side must be at least 64, got {self.max_side}")
        check_annotator(self.annotator)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def register(db: LabelDB, inputs: tuple[Path, ...], *, recursive: bool, report: Report) -> list[int]:
    """Register the images under `inputs`; report each unreadable one (its header) and leave it out."""
    paths = list_images(inputs, recursive=recursive)
    if not paths:
        raise UsageError(f"no image files in {', '.join(str(p) for p in inputs)}")
    entries: list[tuple[Path, tuple[int, int] | None, str | None]] = []
    for path in paths:
        try:
            entries.append((path, image_size(path), None))
        except ImageError as exc:
            entries.append((path, None, exc.reason))
            report(str(exc))
    ids = db.add_images(entries)
    return [image_id for image_id, entry in zip(ids, entries, strict=True) if entry[2] is None]


@dataclass
class Session:
    """What one server knows: its database, annotator, images, token and a small cache of JPEGs."""

    db: LabelDB
    annotator: str
    image_ids: list[int]
    order: str = "random"
    scores: dict[Path, list[float]] = field(default_factory=dict)
    max_side: int = 1600
    report: Report = print
    token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    cache_size: int = 48

    def __post_init__(self) -> None:
        self._ids = set(self.image_ids)
        self._cache: OrderedDict[int, bytes] = OrderedDict()
        self._lock = threading.Lock()
        self._reported: set[int] = set()

    def owns(self, image_id: int) -> bool:
        return image_id in self._ids

    def state(self) -> dict:
        images = [image for image in self.db.images(self._ids) if not image.bad]
        own = self.db.labels_of(self.annotator)
        votes = self.db.votes() if self.order == "uncertain" else None
        ordered = order_images(
            images, own, order=self.order, annotator=self.annotator, votes=votes, scores=self.scores
        )
        return {
            "annotator": self.annotator,
            "levels": [{"name": level.name, "key": str(level.index + 1)} for level in levels.LEVELS],
            "others": [{"name": name, "key": key} for name, key in KEYS.items()],
            "items": [{"id": image.id, "name": image.name, "label": own.get(image.id)} for image in ordered],
            **self.progress(own),
        }

    def progress(self, own: dict[int, str] | None = None) -> dict:
        own = self.db.labels_of(self.annotator) if own is None else own
        bad = self.db.bad_ids() & self._ids
        counts = dict.fromkeys((*levels.NAMES, REJECT, SKIP), 0)
        for image_id, label in own.items():
            if image_id in self._ids and image_id not in bad:
                counts[label] += 1
        total = len(self._ids) - len(bad)
        return {"counts": counts, "done": sum(counts.values()) - counts[SKIP], "total": total}

    def jpeg(self, image_id: int) -> bytes:
        """The image as a JPEG no larger than max_side; raises ImageError (and marks it bad) if unreadable."""
        with self._lock:
            if image_id in self._cache:
                self._cache.move_to_end(image_id)
                return self._cache[image_id]
        image = self.db.image(image_id)
        if image is None:
            raise UsageError(f"no image with id {image_id}")
        if image.bad:
            raise ImageError(image.path, image.bad)
        try:
            pixels = read_image(image.path)
        except ImageError as exc:
            with self._lock:  # the page and its preloader may ask at once: one report per file
                first = image_id not in self._reported
                self._reported.add(image_id)
            if first:
                self.db.mark_bad(image_id, exc.reason)
                self.report(str(exc))
            raise
        from PIL import Image as PILImage

        picture = PILImage.fromarray(pixels)
        picture.thumbnail((self.max_side, self.max_side), PILImage.Resampling.LANCZOS, reducing_gap=3.0)
        buffer = io.BytesIO()
        picture.save(buffer, format="JPEG", quality=88)
        data = buffer.getvalue()
        with self._lock:
            self._cache[image_id] = data
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return data


def create_app(session: Session, *, allowed_hosts: list[str] | None = None):  # -> Starlette
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.trustedhost import TrustedHostMiddleware
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, JSONResponse, Response
    from starlette.routing import Route

    no_store = {"Cache-Control": "no-store"}
    page = (STATIC / "index.html").read_text(encoding="utf-8")
    page = page.replace("__TOKEN__", html.escape(session.token)).replace(
        "__ANNOTATOR__", html.escape(session.annotator)
    )

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status, headers=no_store)

    def index(request: Request) -> HTMLResponse:
        return HTMLResponse(page, headers=no_store)

    def asset(name: str, media_type: str):
        body = (STATIC / name).read_bytes()

        def serve_asset(request: Request) -> Response:
            return Response(body, media_type=media_type, headers=no_store)

        return serve_asset

    def state(request: Request) -> JSONResponse:
        return JSONResponse(session.state(), headers=no_store)

    def image(request: Request) -> Response:
        image_id = request.path_params["image_id"]
        if not session.owns(image_id):
            return error(404, "no such image")
        try:
            data = session.jpeg(image_id)
        except ImageError as exc:
            return error(422, f"{Path(exc.path).name}: {exc.reason}")
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})

    def not_saved(exc: WriteError) -> JSONResponse:
        # The database refused the change (disk full): the page says so, the terminal gets the line.
        session.report(str(exc))
        return error(507, f"not saved: {exc.cause}")

    async def checked_json(request: Request) -> dict | JSONResponse:
        token = request.headers.get(TOKEN_HEADER, "")
        if not secrets.compare_digest(token.encode(), session.token.encode()):
            return error(403, "missing or wrong session token: reload the page")
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return error(415, "expected application/json")
        try:
            body = await request.json()
        except ValueError:
            return error(400, "body is not JSON")
        return body if isinstance(body, dict) else error(400, "expected a JSON object")

    async def label(request: Request) -> JSONResponse:
        body = await checked_json(request)
        if isinstance(body, JSONResponse):
            return body
        image_id, choice = body.get("id"), body.get("label")
        if not isinstance(image_id, int) or isinstance(image_id, bool) or not session.owns(image_id):
            return error(404, "no such image")
        if choice not in CHOICES:
            return error(400, f"label must be one of {', '.join(CHOICES)}")
        from starlette.concurrency import run_in_threadpool

        try:
            change = await run_in_threadpool(session.db.set_label, image_id, session.annotator, choice)
        except WriteError as exc:
            return not_saved(exc)
        progress = await run_in_threadpool(session.progress)
        return JSONResponse({"id": change.image_id, "label": change.label, **progress}, headers=no_store)

    async def undo(request: Request) -> JSONResponse:
        body = await checked_json(request)
        if isinstance(body, JSONResponse):
            return body
        from starlette.concurrency import run_in_threadpool

        try:
            change = await run_in_threadpool(session.db.undo, session.annotator, session.image_ids)
        except WriteError as exc:
            return not_saved(exc)
        progress = await run_in_threadpool(session.progress)
        if change is None:
            return JSONResponse({"id": None, "label": None, **progress}, headers=no_store)
        return JSONResponse({"id": change.image_id, "label": change.label, **progress}, headers=no_store)

    routes = [
        Route("/", index),
        Route("/app.js", asset("app.js", "text/javascript")),
        Route("/style.css", asset("style.css", "text/css")),
        Route("/api/state", state),
        Route("/image/{image_id:int}", image),
        Route("/api/label", label, methods=["POST"]),
        Route("/api/undo", undo, methods=["POST"]),
    ]
    hosts = list(LOOPBACK_HOSTS) if allowed_hosts is None else allowed_hosts
    return Starlette(routes=routes, middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=hosts)])


def bind(host: str, port: int) -> socket.socket:
    """A listening socket (port 0: a free one), so the URL is known before the server starts."""
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from exc
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket, host: str) -> str:
    port = sock.getsockname()[1]
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    shown = f"[{shown}]" if ":" in shown and not shown.startswith("[") else shown
    return f"http://{shown}:{port}/"


def prepare(config: LabelConfig, db: LabelDB, *, report: Report) -> Session:
    annotator = check_annotator(config.annotator)
    ids = register(db, config.images, recursive=config.recursive, report=report)
    scores = read_scores(config.scores) if config.scores else {}
    return Session(
        db, annotator, ids, order=config.order, scores=scores, max_side=config.max_side, report=report
    )


def make_server(app, sock: socket.socket):  # -> uvicorn.Server
    import uvicorn

    return uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False))


def serve(config: LabelConfig, *, report: Report, announce: Callable[[str, Session], None]) -> None:
    """Register the images, listen, call `announce(url, session)`, then serve until interrupted."""
    with LabelDB(config.db) as db:
        session = prepare(config, db, report=report)
        sock = bind(config.host, config.port)
        hosts = list(LOOPBACK_HOSTS) if is_loopback(config.host) else ["*"]
        app = create_app(session, allowed_hosts=hosts)
        server = make_server(app, sock)
        announce(url_of(sock, config.host), session)
        try:
            server.run(sockets=[sock])
        finally:
            sock.close()

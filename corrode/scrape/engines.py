"""Where image URLs come from: icrawler's search engines, a URL list, or the images of web pages.

Each engine is icrawler's own feeder and parser, run by one crawler with our downloader.
The parser is wrapped so that what it does is counted (result pages seen, URLs produced,
exceptions): icrawler's Google parser breaks whenever Google changes its page, its thread
dies and `crawl()` returns as if all went well; the count is how `scrape` notices.
"""

from __future__ import annotations

import html
import json
import logging
import queue
import re
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

from icrawler import Crawler, Feeder, Parser, UrlListFeeder
from icrawler.builtin.baidu import BaiduFeeder, BaiduParser
from icrawler.builtin.bing import BingFeeder, BingParser
from icrawler.builtin.flickr import FlickrFeeder, FlickrParser
from icrawler.builtin.google import GoogleFeeder, GoogleParser
from icrawler.utils import Session

from corrode.errors import UsageError
from corrode.images import IMAGE_SUFFIXES
from corrode.scrape.downloader import HostLimiter

# flickr.photos.search arguments icrawler passes on (its FlickrFeeder drops anything else).
FLICKR_FILTERS = frozenset(
    [
        "user_id", "tags", "tag_mode", "license", "sort", "privacy_filter", "accuracy", "safe_search",
        "content_type", "machine_tags", "machine_tag_mode", "group_id", "contacts", "woe_id", "place_id",
        "has_geo", "geo_context", "lat", "lon", "radius", "radius_units", "is_commons", "in_gallery",
        "is_getty", "extras", "per_page", "page", "color_codes", "styles", "orientation",
        "min_upload_date", "max_upload_date", "min_taken_date", "max_taken_date",
    ]
)  # fmt: skip
FLICKR_SIZES = [
    "original",
    "large 2048",
    "large 1600",
    "large",
    "medium 800",
    "medium 640",
    "medium",
    "small 320",
    "small",
    "thumbnail",
    "large Square",
    "square",
]


@dataclass
class Probe:
    """What the parser side did, for telling "nothing found" from "engine broken"."""

    pages: int = 0  # result / web pages the parser received
    urls: int = 0  # image URLs it produced
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def error(self, message: str) -> None:
        message = re.sub(r"(api_key=)[^&\s]+", r"\1...", message)  # errors are printed: never show a key
        with self.lock:
            if len(self.errors) < 20:
                self.errors.append(message)


class ProbedParser(Parser):
    """Mixin placed before an engine's parser: counts pages and URLs, turns its crashes into errors."""

    def __init__(self, *args: Any, probe: Probe, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.probe = probe
        self._sent: set = set()
        self._sent_lock = threading.Lock()

    def parse(self, response, **kwargs) -> Iterator[dict]:  # type: ignore[override]
        with self.probe.lock:
            self.probe.pages += 1
        if response.status_code != 200:
            self.probe.error(f"{response.url}: HTTP {response.status_code} {response.reason or ''}".strip())
            return
        try:
            # icrawler's parsers return a generator, a list or None (Google, when nothing matched).
            for task in super().parse(response, **kwargs) or ():
                if isinstance(task, dict):
                    task.setdefault("page_url", response.url)
                    with self.probe.lock:
                        self.probe.urls += 1
                yield task
        except Exception as exc:
            self.probe.error(f"{response.url}: parser failed ({type(exc).__name__}: {exc})")

    def worker_exec(self, **kwargs: Any) -> None:
        try:
            super().worker_exec(**kwargs)
        except Exception as exc:
            self.probe.error(f"parser thread died ({type(exc).__name__}: {exc})")

    def output(self, task, block=True, timeout=None) -> None:
        """Hand over each image URL once, and never lose one to a full queue.

        icrawler's CachedQueue.put marks a task as seen *before* the put, so when the put times
        out on a full queue (downloads slower than parsing, the normal case) the parser's retry
        is dropped as a "duplicate" and the URL silently lost. Here a URL counts as sent only
        once the put succeeded.
        """
        key = task.get("file_url") if isinstance(task, dict) else task
        with self._sent_lock:
            if key in self._sent:
                return
        queue.Queue.put(self.out_queue, task, block, timeout)
        with self._sent_lock:
            self._sent.add(key)

    def put(self, task: dict) -> bool:
        """Hand a task to the downloaders without blocking forever once they have stopped."""
        while not self.signal.get("reach_max_num"):
            try:
                self.output(task, timeout=0.5)
            except queue.Full:
                continue
            return True
        return False


class ListParser(ProbedParser):
    """The `urls` engine: each listed URL is an image URL; nothing is fetched here."""

    def worker_exec(self, queue_timeout: float = 0.2, **kwargs: Any) -> None:
        while not self.signal.get("reach_max_num"):
            try:
                url = self.in_queue.get(timeout=queue_timeout)
            except queue.Empty:
                if self.signal.get("feeder_exited") and self.in_queue.empty():
                    break
                continue
            with self.probe.lock:
                self.probe.urls += 1
            self.put({"file_url": url})
            self.in_queue.task_done()


class PageParser(Parser):
    """The `pages` engine: the images a web page embeds (img, srcset, og:image) or links to."""

    def parse(self, response, **kwargs) -> Iterator[dict]:
        page = response.url
        if response.headers.get("Content-Type", "").startswith("image/"):
            yield {"file_url": page, "page_url": page}
            return
        from bs4 import BeautifulSoup

        soup = BeautifulSoup(response.content, "lxml")
        base_tag = soup.find("base", href=True)
        base = urljoin(page, base_tag["href"]) if base_tag else page
        seen: set[str] = set()
        for candidate in _page_images(soup):
            url = urljoin(base, candidate.strip())
            if urlsplit(url).scheme in ("http", "https") and url not in seen:
                seen.add(url)
                yield {"file_url": url, "page_url": page}


def _largest_in_srcset(srcset: str) -> str | None:
    best, best_size = None, -1.0
    for part in srcset.split(","):
        pieces = part.strip().split()
        if not pieces:
            continue
        size = 1.0
        if len(pieces) > 1 and pieces[1][:-1].replace(".", "", 1).isdigit():
            size = float(pieces[1][:-1])
        if size > best_size:
            best, best_size = pieces[0], size
    return best


def _page_images(soup) -> Iterator[str]:
    for tag in soup.find_all("meta"):
        named = tag.get("property") in ("og:image", "og:image:url") or tag.get("name") == "twitter:image"
        if named and tag.get("content"):
            yield tag["content"]
    for tag in soup.find_all(["img", "source"]):
        srcset = tag.get("srcset") or tag.get("data-srcset")
        largest = _largest_in_srcset(srcset) if srcset else None
        if largest:
            yield largest
        for attribute in ("src", "data-src", "data-original"):
            if tag.get(attribute) and not tag[attribute].startswith("data:"):
                yield tag[attribute]
    for tag in soup.find_all("a", href=True):
        if urlsplit(tag["href"]).path.lower().endswith(tuple(IMAGE_SUFFIXES)):
            yield tag["href"]


class BingParserWithPages(BingParser):
    """icrawler's Bing parser, plus the page each image is on ("purl"), which it reads past."""

    def parse(self, response, **kwargs) -> Iterator[dict]:
        from bs4 import BeautifulSoup

        pages = {}
        soup = BeautifulSoup(response.content.decode("utf-8", "ignore"), "lxml")
        for anchor in soup.select("div.imgpt a[m]"):
            try:
                meta = json.loads(html.unescape(anchor["m"]))
            except ValueError:
                continue
            if isinstance(meta, dict) and meta.get("murl") and meta.get("purl"):
                pages[meta["murl"]] = meta["purl"]
        for task in super().parse(response, **kwargs):
            if task["file_url"] in pages:
                task["page_url"] = pages[task["file_url"]]
            yield task


class FlickrParserWithPages(FlickrParser):
    """icrawler's Flickr parser; page URL: the photo's Flickr page, not the API call (it holds the key)."""

    def parse(self, response, **kwargs) -> Iterator[dict]:
        for task in super().parse(response, **kwargs) or ():
            meta = task.get("meta") or {}
            owner, photo = meta.get("owner"), meta.get("id")
            task["page_url"] = f"https://www.flickr.com/photos/{owner}/{photo}" if owner and photo else ""
            yield task


class RoutedSession(Session):
    """icrawler's session, with engine addresses optionally replaced (a mirror, or a test server),
    and the per-host delay applied to every request it makes."""

    def __init__(self, proxy_pool) -> None:
        super().__init__(proxy_pool)
        self.routes: dict[str, str] = {}
        self.limiter: HostLimiter | None = None  # per-host delay for every request: pages and images

    def get(self, url, **kwargs):
        for prefix, target in self.routes.items():
            if url.startswith(prefix):
                url = target.rstrip("/") + url[len(prefix) :]
                break
        if self.limiter is not None:
            self.limiter.wait(url)
        return super().get(url, **kwargs)


class ScrapeCrawler(Crawler):
    """icrawler's Crawler without its global logging setup, and with a prompt shutdown."""

    def set_logger(self, log_level: int = logging.INFO) -> None:
        # icrawler calls logging.basicConfig(level=INFO) here, which would turn on INFO logging
        # for the whole process; `scrape` configures icrawler's loggers itself.
        self.logger = logging.getLogger("icrawler.crawler")

    def set_session(self, headers: Mapping[str, str] | None = None) -> None:
        super().set_session(dict(headers) if headers else None)
        session = RoutedSession(self.proxy_pool)
        session.headers.update(self.session.headers)  # type: ignore[has-type]
        self.session = session

    def crawl(self, feeder_kwargs=None, parser_kwargs=None, downloader_kwargs=None) -> None:
        # As icrawler's, polling every 50 ms instead of every second.
        self.signal.reset()
        self.feeder.start(**(feeder_kwargs or {}))
        self.parser.start(**(parser_kwargs or {}))
        self.downloader.start(**(downloader_kwargs or {}))
        try:
            while self.downloader.is_alive():
                if not self.feeder.is_alive():
                    self.signal.set(feeder_exited=True)
                if not self.parser.is_alive():
                    self.signal.set(parser_exited=True)
                time.sleep(0.05)
        except KeyboardInterrupt:
            # Let the downloads in flight finish their file and manifest row (briefly), then stop.
            self.signal.set(reach_max_num=True)
            for worker in self.downloader.workers:
                worker.join(timeout=2)
            raise
        # Stop the feeder and parser too (they check this signal) before the next query starts.
        # Feeders block on a full queue with no timeout: drain it (get() wakes them) until they end.
        self.signal.set(reach_max_num=True)
        deadline = time.monotonic() + 5
        while (self.feeder.is_alive() or self.parser.is_alive()) and time.monotonic() < deadline:
            for pool in (self.parser, self.downloader):
                try:
                    while True:
                        pool.in_queue.get_nowait()
                except queue.Empty:
                    pass
            time.sleep(0.01)


@dataclass(frozen=True)
class Engine:
    name: str
    feeder: type[Feeder]
    parser: type[Parser]
    address: str  # what --search-url replaces
    suggestion: str  # what to try when this engine returns nothing
    search: bool = True  # takes queries (else: a --from list)
    page_step: int = 20

    def check_filters(self, filters: Mapping[str, str]) -> None:
        if not filters:
            return
        if self.name == "flickr":
            unknown = sorted(set(filters) - FLICKR_FILTERS)
            if unknown:
                raise UsageError(
                    f"flickr: unknown filter(s) {', '.join(unknown)}; known: "
                    f"{', '.join(sorted(FLICKR_FILTERS))}"
                )
            return
        if not self.search:
            raise UsageError(f"--filter applies to search engines, not to --engine {self.name}")
        try:
            self.feeder.get_filter(None).apply(dict(filters))  # type: ignore[arg-type]
        except (KeyError, ValueError, TypeError, AssertionError) as exc:
            message = exc.args[0] if exc.args else str(exc)
            raise UsageError(f"{self.name}: {message}") from exc

    def arguments(
        self, query: str, *, feed_num: int, filters: Mapping[str, str], urls: list[str], apikey: str | None
    ) -> tuple[dict, dict]:
        """(feeder kwargs, parser kwargs) for one query, as icrawler's own crawl() would pass them."""
        parser_kwargs: dict[str, Any] = {"queue_timeout": 0.2}
        if not self.search:
            return {"url_list": urls}, parser_kwargs
        feeder_kwargs: dict[str, Any]
        if self.name == "flickr":
            feeder_kwargs = {"apikey": apikey, "max_num": feed_num, "text": query, **filters}
            parser_kwargs.update(apikey=apikey, size_preference=FLICKR_SIZES)
            return feeder_kwargs, parser_kwargs
        feeder_kwargs = {"keyword": query, "offset": 0, "max_num": feed_num, "filters": dict(filters) or None}
        return feeder_kwargs, parser_kwargs


def _probed(parser: type[Parser]) -> type[Parser]:
    return type(f"Probed{parser.__name__}", (ProbedParser, parser), {})


ENGINES: dict[str, Engine] = {
    "bing": Engine(
        "bing", BingFeeder, _probed(BingParserWithPages), "https://www.bing.com", "google or flickr"
    ),
    "google": Engine(
        "google", GoogleFeeder, _probed(GoogleParser), "https://www.google.com", "bing", page_step=100
    ),
    "baidu": Engine(
        "baidu", BaiduFeeder, _probed(BaiduParser), "http://image.baidu.com", "bing", page_step=30
    ),
    "flickr": Engine(
        "flickr",
        FlickrFeeder,
        _probed(FlickrParserWithPages),
        "https://api.flickr.com",
        "bing",
        page_step=100,
    ),
    "urls": Engine("urls", UrlListFeeder, ListParser, "", "checking the list", search=False),
    "pages": Engine(
        "pages",
        UrlListFeeder,
        _probed(PageParser),
        "",
        "listing the image URLs with --engine urls",
        search=False,
    ),
}

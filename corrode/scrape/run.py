"""`scrape(cfg)`: collect images for each query into one folder, checked, deduplicated and traceable."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from corrode.config import require
from corrode.errors import UsageError
from corrode.images import MAX_PIXELS
from corrode.scrape.checks import CONTENT, MAX_BYTES, MIN_SIDE
from corrode.scrape.dedupe import HASH_BITS, NEAR_DISTANCE

ICRAWLER_LOGGERS = ("icrawler.crawler", "feeder", "parser", "downloader")


@dataclass(frozen=True)
class ScrapeConfig:
    queries: tuple[str, ...] = ()
    engine: str = "bing"
    out: Path = Path("data/raw")
    max_images: int = 100  # new images per query (0: no limit)
    sources: Path | None = None  # URL list for the urls and pages engines
    filters: Mapping[str, str] = field(default_factory=dict)  # passed to the engine as they are
    min_side: int = MIN_SIDE
    max_pixels: int = MAX_PIXELS
    max_bytes: int = MAX_BYTES
    near_distance: int = NEAR_DISTANCE
    threads: int = 4
    host_delay: float = 0.0  # seconds between two requests to one host
    timeout: float = 10.0  # seconds without data before a download is given up
    retries: int = 1  # extra tries after a network failure
    idle_timeout: float | None = 120.0  # stop a query when nothing arrived for this long
    resize: int | None = None  # also write copies with this short side under resized-<size>/
    flickr_key: str | None = None  # else $FLICKR_APIKEY
    search_url: str | None = None  # replaces the engine's address (a mirror, or a local test server)
    verbose: bool = False  # icrawler's own log lines on stderr

    def __post_init__(self) -> None:
        from corrode.scrape.engines import ENGINES

        object.__setattr__(self, "out", Path(self.out))
        object.__setattr__(self, "filters", dict(self.filters))
        if self.sources is not None:
            object.__setattr__(self, "sources", Path(self.sources))
        require(self.engine in ENGINES, f"--engine must be one of {', '.join(ENGINES)}, not {self.engine!r}")
        engine = ENGINES[self.engine]
        if engine.search:
            require(bool(self.queries), f"--engine {self.engine} needs at least one query")
            require(all(q.strip() for q in self.queries), "a query cannot be empty")
        else:
            require(self.sources is not None, f"--engine {self.engine} needs --from FILE (a list of URLs)")
            require(len(self.queries) <= 1, f"--engine {self.engine} takes at most one name (the folder)")
        require(self.max_images >= 0, "--max must be >= 0")
        require(self.min_side >= 1, "--min-side must be >= 1")
        require(self.max_pixels >= 1, "--max-pixels must be >= 1")
        require(self.max_bytes >= 1, "--max-bytes must be >= 1")
        require(0 <= self.near_distance <= HASH_BITS, f"--distance must be in 0..{HASH_BITS}")
        require(1 <= self.threads <= 64, "--threads must be in 1..64")
        require(self.host_delay >= 0, "--delay must be >= 0")
        require(self.timeout > 0, "--timeout must be > 0")
        require(self.retries >= 0, "--retries must be >= 0")
        require(self.idle_timeout is None or self.idle_timeout > 0, "--idle-timeout must be > 0")
        require(self.resize is None or self.resize >= 8, "--size must be >= 8")
        engine.check_filters(self.filters)


@dataclass
class QuerySummary:
    query: str
    engine: str
    folder: str  # relative to the output folder
    found: int = 0  # image URLs the engine produced
    kept: int = 0  # images written (replacements included)
    replaced: int = 0  # older images removed for a larger near-duplicate among them
    duplicates: int = 0
    rejected: int = 0
    skipped: int = 0  # URLs an earlier run already handled
    pages: int = 0  # result pages / web pages the parser received
    listed: int = 0  # URLs in the --from list (urls and pages engines)
    reasons: dict[str, int] = field(default_factory=dict)
    rejections: list[tuple[str, str]] = field(default_factory=list)  # (url, reason) of this run
    engine_errors: list[str] = field(default_factory=list)
    problem: str | None = None  # why this query counts as failed, if it does

    @property
    def new(self) -> int:
        return self.kept - self.replaced


@dataclass
class ScrapeSummary:
    out: Path
    queries: list[QuerySummary]
    resized: int = 0

    @property
    def new(self) -> int:
        return sum(q.new for q in self.queries)

    @property
    def failed(self) -> bool:
        return any(q.problem for q in self.queries)

    def totals(self) -> dict[str, int]:
        keys = ("found", "kept", "replaced", "duplicates", "rejected", "skipped")
        return {k: sum(getattr(q, k) for q in self.queries) for k in keys}


Progress = Callable[[QuerySummary], None]


def read_url_list(path: Path) -> list[str]:
    """Non-blank, non-# lines of a URL list ('-' reads stdin)."""
    if str(path) == "-":
        text = sys.stdin.read()
    else:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError as exc:
            raise UsageError(f"{path}: no such file") from exc
        except OSError as exc:
            raise UsageError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


@contextmanager
def icrawler_logging(verbose: bool) -> Iterator[None]:
    """icrawler's INFO lines on stderr with --verbose; otherwise nothing from it at all."""
    loggers = [logging.getLogger(name) for name in ICRAWLER_LOGGERS]
    saved = [(lg.level, lg.propagate, list(lg.handlers)) for lg in loggers]
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s", "%H:%M:%S"))
    for logger in loggers:
        logger.propagate = False
        logger.handlers = [handler] if verbose else []
        logger.setLevel(logging.INFO if verbose else logging.CRITICAL + 1)
    try:
        yield
    finally:
        for logger, (level, propagate, handlers) in zip(loggers, saved, strict=True):
            logger.setLevel(level)
            logger.propagate = propagate
            logger.handlers = handlers


def scrape(cfg: ScrapeConfig, progress: Progress | None = None) -> ScrapeSummary:
    """Run every query of `cfg` into `cfg.out`; the summary says what arrived and what went wrong."""
    from corrode.scrape.downloader import HostLimiter
    from corrode.scrape.engines import ENGINES
    from corrode.scrape.folder import ScrapeFolder, slug

    engine = ENGINES[cfg.engine]
    apikey = None
    if cfg.engine == "flickr":
        apikey = cfg.flickr_key or os.environ.get("FLICKR_APIKEY")
        if not apikey:
            raise UsageError("--engine flickr needs an API key: --flickr-key KEY or FLICKR_APIKEY")
    urls: list[str] = []
    queries = list(cfg.queries)
    if not engine.search:
        assert cfg.sources is not None
        urls = read_url_list(cfg.sources)
        if not queries:
            queries = [cfg.sources.stem if str(cfg.sources) != "-" else "stdin"]
    folder = ScrapeFolder(
        cfg.out,
        near_distance=cfg.near_distance,
        min_side=cfg.min_side,
        max_pixels=cfg.max_pixels,
        resize=cfg.resize,
    )
    limiter = HostLimiter(cfg.host_delay)
    summaries = []
    with icrawler_logging(cfg.verbose):
        for query in queries:
            summaries.append(
                _run_query(cfg, engine, folder, limiter, query, slug(query), urls, apikey, progress)
            )
    resized = folder.backfill_resized() if cfg.resize else 0
    return ScrapeSummary(out=cfg.out, queries=summaries, resized=resized)


def _run_query(cfg, engine, folder, limiter, query, subfolder, urls, apikey, progress) -> QuerySummary:
    from corrode.scrape.downloader import CheckedDownloader, Job, Tally
    from corrode.scrape.engines import Probe, ScrapeCrawler

    summary = QuerySummary(query=query, engine=cfg.engine, folder=subfolder, listed=len(urls))

    def update(tally: Tally) -> None:
        _copy_tally(summary, tally)
        if progress is not None:
            progress(summary)

    job = Job(
        folder=folder,
        query=query,
        engine=cfg.engine,
        subfolder=subfolder,
        max_new=cfg.max_images,
        timeout=cfg.timeout,
        retries=cfg.retries,
        max_bytes=cfg.max_bytes,
        on_update=update,
    )
    good_urls = []
    for number, url in enumerate(urls, 1):
        parts = urlsplit(url)
        if parts.scheme in ("http", "https") and parts.netloc:
            good_urls.append(url)
            continue
        reason = f"{cfg.sources} line {number}: not an http(s) URL"
        folder.reject(url, reason, CONTENT, page_url="", query=query, engine=cfg.engine)
        job.tally.rejected += 1
        job.tally.reasons["not an http(s) URL"] += 1
        job.tally.rejections.append((url, reason))
    if not engine.search and not good_urls:
        _copy_tally(summary, job.tally)
        summary.problem = f"{cfg.sources}: no http(s) URLs to download"
        return summary
    probe = Probe()
    crawler = ScrapeCrawler(
        feeder_cls=engine.feeder,
        parser_cls=engine.parser,
        downloader_cls=CheckedDownloader,
        downloader_threads=cfg.threads,
        extra_parser_args={"probe": probe},
        extra_downloader_args={"job": job},
    )
    crawler.session.limiter = limiter
    if cfg.search_url and engine.address:
        crawler.session.routes[engine.address] = cfg.search_url
    # Engines are asked for more results than wanted: some will be rejected or duplicates.
    wanted = cfg.max_images or 1000
    feed_num = min(1000, max(2 * wanted, wanted + engine.page_step))
    feeder_kwargs, parser_kwargs = engine.arguments(
        query, feed_num=feed_num, filters=cfg.filters, urls=good_urls, apikey=apikey
    )
    parser_kwargs["req_timeout"] = cfg.timeout
    if progress is not None:
        progress(summary)
    crawler.crawl(
        feeder_kwargs=feeder_kwargs,
        parser_kwargs=parser_kwargs,
        downloader_kwargs={"max_num": cfg.max_images, "max_idle_time": cfg.idle_timeout},
    )
    if job.fatal is not None:
        raise job.fatal
    _copy_tally(summary, job.tally)
    summary.pages = probe.pages
    summary.engine_errors = list(probe.errors)
    summary.problem = _problem(cfg, engine, summary, len(good_urls))
    return summary


def _copy_tally(summary: QuerySummary, tally) -> None:
    with tally.lock:
        summary.found = tally.found
        summary.kept = tally.kept
        summary.replaced = tally.replaced
        summary.duplicates = tally.duplicates
        summary.rejected = tally.rejected
        summary.skipped = tally.skipped
        summary.reasons = dict(tally.reasons)
        summary.rejections = list(tally.rejections)


def _problem(cfg: ScrapeConfig, engine, summary: QuerySummary, listed: int) -> str | None:
    """Why a query failed, judged from what arrived; None when it did its job."""
    if summary.found == 0:
        if engine.search:
            detail = f"{summary.pages} result page(s) read"
            if summary.engine_errors:
                detail += "; " + summary.engine_errors[0]
            return (
                f"{cfg.engine} returned no image URLs for {summary.query!r} ({detail}); "
                f"its result-page parser may no longer match the site. Try --engine {engine.suggestion}."
            )
        if cfg.engine == "pages":
            return (
                f"the {listed} listed page(s) gave no image URLs ({summary.pages} fetched); "
                f"try {engine.suggestion}"
            )
        return "no URLs were downloaded"
    if summary.new == 0 and summary.rejected > 0 and summary.duplicates + summary.skipped == 0:
        return f"none of the {summary.found} image URLs gave a usable image"
    # A user's own list: every URL that failed is an input that failed.
    if cfg.engine == "pages" and summary.pages < listed:
        return f"{listed - summary.pages} of {listed} listed page(s) could not be fetched"
    if not engine.search and summary.rejected > 0:
        return f"{summary.rejected} of {summary.found} image URL(s) rejected (see rejected.csv)"
    return None

"""icrawler's downloader, made to keep only what decodes and to stop only when the work is done.

`CheckedDownloader` replaces three things of icrawler's `ImageDownloader`:
- `download` streams the body with a byte cap and a deadline, refuses incomplete bodies, and
  hands the complete bytes to `ScrapeFolder.add` (full decode, size limits, duplicates,
  content-hash name, manifest row) instead of writing them under a positional name;
- `worker_exec` waits for the parser as long as it runs (icrawler's threads exit when the
  queue is empty for 5 s once one image arrived, and its `max_idle_time` never resets because
  `download` returns None, so it counts from the start);
- a per-host delay shared by all threads, so a site sees at most one request per `delay`.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests
from icrawler import ImageDownloader

from corrode.errors import WriteError
from corrode.scrape.checks import CONTENT, HTTP, NETWORK, SIZE, Rejected
from corrode.scrape.folder import DUPLICATE_OUTCOME, KEPT, REJECTED, SKIPPED, SURPLUS, ScrapeFolder

CHUNK = 16 * 1024
# Server answers worth asking again on a later run (rate limits, outages), unlike 404 or 403.
TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


class HostLimiter:
    """At most one request start per `delay` seconds per host, across threads."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self._next: dict[str, float] = {}
        self._lock = threading.Lock()

    def wait(self, url: str) -> None:
        if self.delay <= 0:
            return
        host = urlsplit(url).netloc
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next.get(host, 0.0))
            self._next[host] = start + self.delay
        if start > now:
            time.sleep(start - now)


@dataclass
class Tally:
    """What one query has produced so far; updated by the download threads."""

    found: int = 0  # image URLs the engine handed over
    kept: int = 0
    duplicates: int = 0
    rejected: int = 0
    skipped: int = 0  # URLs already handled by an earlier run
    replaced: int = 0  # kept images removed for a larger near-duplicate
    reasons: Counter = field(default_factory=Counter)
    rejections: list[tuple[str, str]] = field(default_factory=list)  # (url, reason), first 1000
    last_activity: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def new(self) -> int:
        return self.kept - self.replaced


@dataclass
class Job:
    """Everything a download thread needs to know about the query it works for."""

    folder: ScrapeFolder
    query: str
    engine: str
    subfolder: str
    max_new: int
    timeout: float
    retries: int
    max_bytes: int
    tally: Tally = field(default_factory=Tally)
    on_update: Callable[[Tally], None] | None = None
    reserved: int = 0
    fatal: WriteError | None = None  # the folder cannot take more (disk full): every thread stops

    def reserve(self, replacing: bool) -> bool:
        """Called under the folder lock just before a file is kept: enforces --max exactly,
        however many downloads are in flight. A replacement adds no image, so it always passes."""
        if replacing or self.max_new <= 0:
            return True
        if self.reserved >= self.max_new:
            return False
        self.reserved += 1
        return True


def fetch(
    session: requests.Session, url: str, *, timeout: float, max_bytes: int, referer: str = ""
) -> tuple[bytes, str]:
    """The complete body and content type of `url`; raise Rejected for anything less."""
    headers = {"Referer": referer} if referer else {}
    # The whole body must arrive within a generous multiple of the per-read timeout, so a
    # server trickling one byte per second cannot hold a thread forever.
    deadline = time.monotonic() + 10 * timeout
    received = 0
    try:
        with session.get(url, timeout=timeout, stream=True, headers=headers) as response:
            if response.status_code != 200:
                kind = NETWORK if response.status_code in TRANSIENT_STATUS else HTTP
                raise Rejected(f"HTTP {response.status_code} {response.reason or ''}".strip(), kind)
            content_type = response.headers.get("Content-Type", "").split(";")[0].strip()
            declared = response.headers.get("Content-Length")
            expected = int(declared) if declared and declared.isdigit() else None
            if expected is not None and expected > max_bytes:
                raise Rejected(f"too large: {expected:,} bytes (limit {max_bytes:,})", SIZE)
            chunks = []
            for chunk in response.iter_content(CHUNK):
                chunks.append(chunk)
                received += len(chunk)
                if received > max_bytes:
                    raise Rejected(f"too large: over {max_bytes:,} bytes", SIZE)
                if time.monotonic() > deadline:
                    raise Rejected(f"too slow: {received:,} bytes in {10 * timeout:g} s", NETWORK)
    except requests.Timeout as exc:
        raise Rejected(f"timed out (no data for {timeout:g} s)", NETWORK) from exc
    except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
        if received or isinstance(exc, requests.exceptions.ChunkedEncodingError):
            of = f" of {expected:,}" if expected else ""
            raise Rejected(f"connection dropped mid-body (after {received:,}{of} bytes)", NETWORK) from exc
        raise Rejected(f"connection failed: {_short(exc)}", NETWORK) from exc
    except requests.RequestException as exc:
        raise Rejected(f"request failed: {_short(exc)}", NETWORK) from exc
    if expected is not None and received != expected:
        raise Rejected(f"connection dropped mid-body ({received:,} of {expected:,} bytes)", NETWORK)
    if received == 0:
        raise Rejected("empty response (0 bytes)", CONTENT)
    return b"".join(chunks), content_type


def _short(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) < 160 else text[:157] + "..."


class CheckedDownloader(ImageDownloader):
    def __init__(self, thread_num, signal, session, storage, job: Job) -> None:
        super().__init__(thread_num, signal, session, storage)
        self.job = job

    def download(self, task, default_ext, timeout=5, max_retry=3, overwrite=False, **kwargs) -> bool:
        job, tally = self.job, self.job.tally
        url = task["file_url"]
        page_url = task.get("page_url", "")
        with tally.lock:
            tally.found += 1
            tally.last_activity = time.monotonic()
        if not job.folder.claim(url):
            self._count(url, SKIPPED, "")
            return True
        context = {"page_url": page_url, "query": job.query, "engine": job.engine}
        for attempt in range(job.retries + 1):
            try:
                data, content_type = fetch(
                    self.session, url, timeout=job.timeout, max_bytes=job.max_bytes, referer=page_url
                )
            except Rejected as rejection:
                if rejection.kind == NETWORK and attempt < job.retries:
                    self.logger.info("retrying %s: %s", url, rejection.reason)
                    continue
                outcome = job.folder.reject(url, rejection.reason, rejection.kind, **context)
                break
            outcome = job.folder.add(
                data,
                url=url,
                subfolder=job.subfolder,
                content_type=content_type,
                admit=job.reserve,
                **context,
            )
            break
        self.logger.info("%s %s %s", outcome.status, url, outcome.detail)
        reason = outcome.detail if outcome.status == REJECTED else ""
        self._count(url, outcome.status, reason, outcome.replaced)
        return True

    def _count(self, url: str, status: str, reason: str, replaced: str = "") -> None:
        tally = self.job.tally
        with tally.lock:
            tally.last_activity = time.monotonic()
            if status == KEPT:
                tally.kept += 1
                tally.replaced += bool(replaced)
            elif status == DUPLICATE_OUTCOME:
                tally.duplicates += 1
            elif status == SKIPPED:
                tally.skipped += 1
            elif status == SURPLUS:
                pass  # arrived after --max was reached; left for a later run
            else:
                tally.rejected += 1
                tally.reasons[_reason_group(reason)] += 1
                if len(tally.rejections) < 1000:
                    tally.rejections.append((url, reason))
            if self.job.max_new > 0 and tally.new >= self.job.max_new:
                self.signal.set(reach_max_num=True)
        if self.job.on_update is not None:
            self.job.on_update(tally)

    def worker_exec(
        self, max_num, default_ext="jpg", queue_timeout=0.2, req_timeout=5, max_idle_time=None, **kwargs
    ):
        self.max_num = max_num
        tally = self.job.tally
        while not self.signal.get("reach_max_num"):
            if max_idle_time is not None and time.monotonic() - tally.last_activity > max_idle_time:
                self.logger.info("nothing arrived for %g s, thread stops", max_idle_time)
                break
            try:
                task = self.in_queue.get(timeout=queue_timeout)
            except queue.Empty:
                # Stop only when the parser is gone *and* nothing is left: a slow result page is
                # not the end of the crawl.
                if self.signal.get("parser_exited") and self.in_queue.empty():
                    break
                continue
            try:
                self.download(task, default_ext, req_timeout, **kwargs)
            except WriteError as exc:
                # No point downloading what cannot be kept: stop the crawl and say why once.
                if self.job.fatal is None:
                    self.job.fatal = exc
                self.signal.set(reach_max_num=True)
            except Exception as exc:  # a bug here must not kill the thread silently
                self.logger.error("internal error on %s: %s", task.get("file_url"), exc)
                with tally.lock:
                    tally.rejected += 1
                    tally.reasons[f"internal error: {type(exc).__name__}"] += 1
            finally:
                self.in_queue.task_done()


def _reason_group(reason: str) -> str:
    """Reasons without their numbers, so the summary can count them: 'too small: 64x48 ...' -> 'too small'."""
    head = reason.split(":")[0].split("(")[0].strip()
    if head.startswith("HTTP "):
        return head
    if head.startswith("connection dropped"):
        return "connection dropped"
    return head or "other"

"""The output folder of `scrape`: content-hash names, duplicate checks, manifest rows, resized copies.

One `ScrapeFolder` is shared by every download thread and every query of a run. It is built
from manifest.csv, rejected.csv and the image files already in the folder, so duplicates are
found across earlier runs and other queries, and URLs already handled are not fetched again.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from corrode.errors import WriteError, write_reason
from corrode.images import (
    IMAGE_SUFFIXES,
    MAX_PIXELS,
    ImageError,
    atomic_write_bytes,
    read_image,
    sweep_once,
    temp_prefix,
    write_image,
)
from corrode.scrape.checks import (
    DUPLICATE,
    MIN_SIDE,
    RETRIED_KINDS,
    Rejected,
    check_download,
)
from corrode.scrape.dedupe import (
    NEAR_DISTANCE,
    DedupeIndex,
    Entry,
    format_hash,
    parse_hash,
    perceptual_hash,
)
from corrode.scrape.manifest import Manifest, now

KEPT = "kept"
DUPLICATE_OUTCOME = "duplicate"
REJECTED = "rejected"
SKIPPED = "skipped"
SURPLUS = "surplus"

RESIZED_PREFIX = "resized-"
# Formats write_image handles well for a training copy; others (gif, bmp, tif, ppm) become png.
RESIZED_SUFFIXES = frozenset({"jpg", "png", "webp"})


def slug(text: str) -> str:
    """A folder name for a query: lower case, runs of anything but letters/digits -> '-'."""
    name = re.sub(r"[^\w]+", "-", text.strip().lower(), flags=re.UNICODE).strip("-_")
    return name[:80] or "query"


def content_name(sha256: str, suffix: str) -> str:
    # 64 bits of the content hash: a collision needs ~4e9 images; positions never enter a name.
    return f"{sha256[:16]}.{suffix}"


@dataclass(frozen=True)
class Outcome:
    status: str  # KEPT, DUPLICATE_OUTCOME, REJECTED or SKIPPED
    detail: str = ""  # kept file, or the reason it was not kept
    kind: str = ""  # rejection kind
    replaced: str = ""  # a smaller near-duplicate removed to make room for this one


class ScrapeFolder:
    def __init__(
        self,
        root: str | Path,
        *,
        near_distance: int = NEAR_DISTANCE,
        min_side: int = MIN_SIDE,
        max_pixels: int = MAX_PIXELS,
        resize: int | None = None,
    ) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.min_side = min_side
        self.max_pixels = max_pixels
        self.resize = resize
        self.manifest = Manifest(self.root)
        self.index = DedupeIndex(near_distance)
        self.lock = threading.RLock()
        self._urls: dict[str, str] = {}  # kept file -> its source URL (for replacement rows)
        self._known_urls: set[str] = set()
        self._claimed: set[str] = set()
        self._load()

    # -- loading -------------------------------------------------------------------------------

    def _load(self) -> None:
        # Temporary files of a run that was killed mid-download (never images, never in a manifest).
        for pattern in (".download-*.part", "*/.download-*.part", ".*.part.*", "*/.*.part.*"):
            for stale in self.root.glob(pattern):
                stale.unlink(missing_ok=True)
        for row in self.manifest.kept.rows():
            # A URL whose image the user deleted by hand stays known: cleaning is not undone.
            self._known_urls.add(row["url"])
            path = self.root / row["file"]
            if not path.is_file():
                continue
            try:
                entry = Entry(
                    key=row["file"],
                    sha256=row["sha256"],
                    phash=parse_hash(row["phash"]),
                    pixels=int(row["width"]) * int(row["height"]),
                    size_bytes=int(row["bytes"]),
                )
            except (KeyError, ValueError):
                continue
            self.index.add(entry)
            self._urls[entry.key] = row["url"]
        for row in self.manifest.rejected.rows():
            if row.get("kind") not in RETRIED_KINDS:
                self._known_urls.add(row["url"])
        for path in self._foreign_images():
            self._index_foreign(path)

    def _foreign_images(self) -> list[Path]:
        """Images in the folder (top level and one level of query folders) that no manifest row names."""
        found = []
        for path in sorted(self.root.glob("*")) + sorted(self.root.glob("*/*")):
            relative = path.relative_to(self.root)
            if relative.parts[0].startswith(RESIZED_PREFIX) or any(p.startswith(".") for p in relative.parts):
                continue
            if (
                path.is_file()
                and path.suffix.lower() in IMAGE_SUFFIXES
                and relative.as_posix() not in self.index
            ):
                found.append(path)
        return found

    def _index_foreign(self, path: Path) -> None:
        try:
            data = path.read_bytes()
            array = read_image(path, max_pixels=self.max_pixels)
        except (ImageError, OSError):
            return  # not ours to judge; it just takes no part in duplicate checks
        self.index.add(
            Entry(
                key=path.relative_to(self.root).as_posix(),
                sha256=hashlib.sha256(data).hexdigest(),
                phash=perceptual_hash(array),
                pixels=array.shape[0] * array.shape[1],
                size_bytes=len(data),
                owned=False,
            )
        )

    # -- URLs ----------------------------------------------------------------------------------

    def claim(self, url: str) -> bool:
        """True if `url` is new to this folder (and now taken by the caller's thread)."""
        with self.lock:
            if url in self._known_urls or url in self._claimed:
                return False
            self._claimed.add(url)
            return True

    def reject(self, url: str, reason: str, kind: str, *, page_url: str, query: str, engine: str) -> Outcome:
        self.manifest.rejected.append(
            {
                "url": url,
                "page_url": page_url,
                "query": query,
                "engine": engine,
                "kind": kind,
                "reason": reason,
                "time": now(),
            }
        )
        status = DUPLICATE_OUTCOME if kind == DUPLICATE else REJECTED
        return Outcome(status, reason, kind)

    # -- adding an image -----------------------------------------------------------------------

    def add(
        self,
        data: bytes,
        *,
        url: str,
        page_url: str = "",
        query: str = "",
        engine: str = "",
        subfolder: str = "",
        content_type: str = "",
        admit: Callable[[bool], bool] | None = None,
    ) -> Outcome:
        """Check a complete download and keep it, or log why not. Never leaves a partial file."""
        context = {"page_url": page_url, "query": query, "engine": engine}
        sha256 = hashlib.sha256(data).hexdigest()
        existing = self.index.exact(sha256)
        if existing is not None:
            return self.reject(url, f"same bytes as {existing.key}", DUPLICATE, **context)
        folder = self.root / subfolder if subfolder else self.root
        try:
            folder.mkdir(parents=True, exist_ok=True)
            # The decode check reads a file (the project's one reader); this one is only ever a temp.
            sweep_once(folder)
            handle, temp_name = tempfile.mkstemp(prefix=temp_prefix("download"), suffix=".part", dir=folder)
        except OSError as exc:
            raise WriteError(folder, write_reason(exc)) from exc
        temp = Path(temp_name)
        try:
            try:
                with os.fdopen(handle, "wb") as stream:
                    stream.write(data)
            except OSError as exc:
                raise WriteError(folder, write_reason(exc)) from exc
            try:
                checked = check_download(
                    temp, content_type=content_type, min_side=self.min_side, max_pixels=self.max_pixels
                )
            except Rejected as rejection:
                return self.reject(url, rejection.reason, rejection.kind, **context)
            phash = perceptual_hash(checked.array)
            name = content_name(sha256, checked.suffix)
            key = f"{subfolder}/{name}" if subfolder else name
            entry = Entry(key, sha256, phash, checked.width * checked.height, len(data))
            with self.lock:
                existing = self.index.exact(sha256)
                if existing is not None:
                    return self.reject(url, f"same bytes as {existing.key}", DUPLICATE, **context)
                near = self.index.nearest(phash)
                if near is not None:
                    other, distance = near
                    if not other.owned or (other.pixels, other.size_bytes) >= (
                        entry.pixels,
                        entry.size_bytes,
                    ):
                        reason = f"near-duplicate of {other.key} (distance {distance}), not larger than it"
                        return self.reject(url, reason, DUPLICATE, **context)
                if admit is not None and not admit(near is not None):
                    return Outcome(SURPLUS)
                # Image first, then its row: a crash in between leaves a complete image without a
                # row (indexed as a foreign file next time), never a row naming a partial image.
                atomic_write_bytes(self.root / key, data)
                self.manifest.kept.append(
                    {
                        "file": key,
                        "sha256": sha256,
                        "phash": format_hash(phash),
                        "url": url,
                        "page_url": page_url,
                        "query": query,
                        "engine": engine,
                        "width": checked.width,
                        "height": checked.height,
                        "bytes": len(data),
                        "time": now(),
                    }
                )
                self.index.add(entry)
                self._urls[key] = url
                replaced = ""
                if near is not None:
                    replaced = self._replace(near[0], key, near[1], context)
            if self.resize:
                self.write_resized(key, checked.array)
            return Outcome(KEPT, key, replaced=replaced)
        finally:
            temp.unlink(missing_ok=True)

    def _replace(self, smaller: Entry, larger_key: str, distance: int, context: dict[str, str]) -> str:
        """Drop a kept image for which a larger near-duplicate just arrived (the kept file is the largest)."""
        self.manifest.kept.remove(lambda row: row["file"] == smaller.key)
        self.index.remove(smaller.key)
        (self.root / smaller.key).unlink(missing_ok=True)
        resized = self.resized_path(smaller.key)
        if resized is not None:
            resized.unlink(missing_ok=True)
        self.manifest.rejected.append(
            {
                "url": self._urls.pop(smaller.key, ""),
                "page_url": context["page_url"],
                "query": context["query"],
                "engine": context["engine"],
                "kind": DUPLICATE,
                "reason": f"replaced by larger near-duplicate {larger_key} (distance {distance})",
                "time": now(),
            }
        )
        return smaller.key

    # -- resized copies ------------------------------------------------------------------------

    def resized_path(self, key: str) -> Path | None:
        if not self.resize:
            return None
        relative = Path(key)
        suffix = relative.suffix.lstrip(".")
        suffix = suffix if suffix in RESIZED_SUFFIXES else "png"
        return self.root / f"{RESIZED_PREFIX}{self.resize}" / relative.with_suffix(f".{suffix}")

    def write_resized(self, key: str, array: np.ndarray) -> Path:
        """A copy whose short side is `resize` px (aspect kept), for training; the original stays."""
        path = self.resized_path(key)
        assert path is not None and self.resize
        height, width = array.shape[:2]
        scale = self.resize / min(height, width)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        write_image(path, Image.fromarray(array).resize(size, Image.Resampling.LANCZOS))
        return path

    def backfill_resized(self) -> int:
        """Write missing resized copies for every kept image (earlier runs included)."""
        if not self.resize:
            return 0
        written = 0
        for row in self.manifest.kept.rows():
            path = self.resized_path(row["file"])
            source = self.root / row["file"]
            if path is None or path.exists() or not source.is_file():
                continue
            try:
                self.write_resized(row["file"], read_image(source, max_pixels=self.max_pixels))
            except ImageError:
                continue
            written += 1
        return written

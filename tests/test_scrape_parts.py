"""The pieces of `scrape` without a network: checks, duplicate index, manifest files, page parsing."""

from __future__ import annotations

import io
import logging
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from bs4 import BeautifulSoup
from PIL import Image

from corrode.scrape.checks import CONTENT, SIZE, Rejected, check_download, describe_non_image
from corrode.scrape.dedupe import NEAR_DISTANCE, DedupeIndex, Entry, format_hash, parse_hash, perceptual_hash
from corrode.scrape.downloader import HostLimiter
from corrode.scrape.engines import ENGINES, _page_images
from corrode.scrape.folder import KEPT, ScrapeFolder, content_name, slug
from corrode.scrape.manifest import MANIFEST_COLUMNS, CsvLog
from corrode.scrape.run import ScrapeConfig, icrawler_logging


def picture(seed: int, width: int, height: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC))


def encoded(array: np.ndarray, fmt: str = "JPEG", **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def test_check_download_accepts_and_names_by_content(tmp_path: Path) -> None:
    path = tmp_path / "download.part"  # the URL's suffix plays no part
    path.write_bytes(encoded(picture(1, 150, 130), "WEBP"))
    checked = check_download(path)
    assert (checked.width, checked.height, checked.suffix) == (150, 130, "webp")
    assert checked.array.shape == (130, 150, 3) and checked.array.dtype == np.uint8


@pytest.mark.parametrize(
    ("data", "content_type", "kind", "words"),
    [
        (
            b"<!doctype html><html><body>blocked</body></html>",
            "image/jpeg",
            CONTENT,
            "HTML page served as image/jpeg",
        ),
        (b'{"error": "rate limited"}', "image/png", CONTENT, "JSON"),
        (b'<svg xmlns="http://www.w3.org/2000/svg"></svg>', "image/svg+xml", CONTENT, "SVG"),
        (b"\x00\x01\x02garbage", "", CONTENT, "not an image"),
        (encoded(picture(2, 300, 200))[:900], "image/jpeg", CONTENT, "truncated"),
        (encoded(picture(3, 300, 100)), "image/jpeg", SIZE, "too small: 300x100"),
    ],
)
def test_check_download_rejects_with_a_reason(tmp_path: Path, data, content_type, kind, words) -> None:
    path = tmp_path / "download.part"
    path.write_bytes(data)
    with pytest.raises(Rejected) as caught:
        check_download(path, content_type=content_type, min_side=128)
    assert caught.value.kind == kind and words in caught.value.reason


def test_pixel_limit_and_min_side_are_options(tmp_path: Path) -> None:
    path = tmp_path / "download.part"
    path.write_bytes(encoded(picture(4, 200, 150), "PNG"))
    with pytest.raises(Rejected, match="too many pixels") as caught:
        check_download(path, max_pixels=200 * 150 - 1)
    assert caught.value.kind == SIZE
    assert check_download(path, min_side=150).height == 150


def test_describe_non_image_leaves_binary_alone() -> None:
    assert describe_non_image(b"\xff\xd8\xff\xe0", "image/jpeg") is None
    assert describe_non_image(b"Access denied", "") == "not an image: text"


def test_perceptual_hash_survives_resizing_and_recompression() -> None:
    original = picture(5, 400, 300)
    smaller = np.asarray(
        Image.open(
            io.BytesIO(
                encoded(
                    np.asarray(Image.fromarray(original).resize((200, 150), Image.Resampling.LANCZOS)),
                    quality=60,
                )
            )
        )
    )
    other = picture(6, 400, 300)
    near = bin(perceptual_hash(original) ^ perceptual_hash(smaller)).count("1")
    far = bin(perceptual_hash(original) ^ perceptual_hash(other)).count("1")
    assert near <= NEAR_DISTANCE < far
    value = perceptual_hash(original)
    assert parse_hash(format_hash(value)) == value and len(format_hash(value)) == 16


def test_dedupe_index_exact_near_and_remove() -> None:
    index = DedupeIndex(distance=4)
    assert index.nearest(0) is None
    index.add(Entry("a.jpg", "sha-a", 0b1111, 100, 10))
    index.add(Entry("b.jpg", "sha-b", (1 << 63) | 0xFF00, 100, 10))
    assert index.exact("sha-a").key == "a.jpg" and index.exact("sha-x") is None
    entry, distance = index.nearest(0b0111)
    assert (entry.key, distance) == ("a.jpg", 1)
    assert index.nearest(0xFFFF_0000_0000) is None  # 16 bits from both
    index.remove("a.jpg")
    assert "a.jpg" not in index and index.exact("sha-a") is None and index.nearest(0b0111) is None
    for number in range(200):  # grows past its first allocation
        index.add(Entry(f"{number}.jpg", f"sha{number}", number << 20, 1, 1))
    assert len(index) == 201 and index.nearest(150 << 20)[0].key == "150.jpg"


def test_manifest_survives_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "manifest.csv"
    log = CsvLog(path, MANIFEST_COLUMNS)
    log.append({"file": "q/a.jpg", "url": "http://x/a, with comma.jpg", "width": 10})
    with path.open("ab") as handle:  # a crash in the middle of the next row
        handle.write(b"q/b.jpg,abc,123,http://x/b")
    again = CsvLog(path, MANIFEST_COLUMNS)
    assert [row["file"] for row in again.rows()] == ["q/a.jpg"]
    again.append({"file": "q/c.jpg"})
    rows = again.rows()
    assert [row["file"] for row in rows] == ["q/a.jpg", "q/c.jpg"]
    assert rows[0]["url"] == "http://x/a, with comma.jpg"
    assert again.remove(lambda row: row["file"] == "q/a.jpg") == 1
    assert [row["file"] for row in CsvLog(path, MANIFEST_COLUMNS).rows()] == ["q/c.jpg"]


def test_manifest_appends_from_many_threads(tmp_path: Path) -> None:
    log = CsvLog(tmp_path / "manifest.csv", MANIFEST_COLUMNS)
    threads = [
        threading.Thread(target=lambda n=n: [log.append({"file": f"{n}-{i}"}) for i in range(20)])
        for n in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    files = [row["file"] for row in log.rows()]
    assert len(files) == 80 and len(set(files)) == 80


def test_manifest_with_foreign_columns_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "manifest.csv"
    path.write_text("name,size\na,1\n")
    with pytest.raises(Exception, match="unexpected columns"):
        CsvLog(path, MANIFEST_COLUMNS)


def test_folder_keeps_largest_and_writes_nothing_partial(tmp_path: Path) -> None:
    folder = ScrapeFolder(tmp_path, resize=64)
    big = picture(7, 400, 300)
    small = encoded(np.asarray(Image.fromarray(big).resize((200, 150), Image.Resampling.LANCZOS)), quality=80)
    first = folder.add(small, url="http://x/small.jpg", query="q", subfolder="q")
    assert first.status == KEPT and first.detail.startswith("q/") and (tmp_path / first.detail).exists()
    second = folder.add(encoded(big), url="http://x/big.jpg", query="q", subfolder="q")
    assert second.status == KEPT and second.replaced == first.detail
    assert not (tmp_path / first.detail).exists() and not (tmp_path / "resized-64" / first.detail).exists()
    assert min(Image.open(tmp_path / "resized-64" / second.detail).size) == 64
    assert [row["url"] for row in folder.manifest.kept.rows()] == ["http://x/big.jpg"]
    third = folder.add(b"<html>nope</html>", url="http://x/bad.jpg", content_type="image/jpeg", subfolder="q")
    assert third.status == "rejected"
    assert sorted(p.name for p in (tmp_path / "q").iterdir()) == [Path(second.detail).name]
    # The folder as a later run sees it: the same URLs are known, the image is indexed.
    later = ScrapeFolder(tmp_path)
    assert not later.claim("http://x/big.jpg") and not later.claim("http://x/bad.jpg")
    assert not later.claim("http://x/small.jpg")  # replaced: not worth fetching again
    assert later.claim("http://x/new.jpg") and not later.claim("http://x/new.jpg")
    assert later.index.exact(folder.manifest.kept.rows()[0]["sha256"]) is not None


def test_names_and_slugs() -> None:
    assert content_name("ab" * 32, "png") == "abababababababab.png"
    assert slug("  Rusty car / ROST! ") == "rusty-car-rost"
    assert slug("???") == "query"


def test_page_images_finds_every_kind_of_reference() -> None:
    soup = BeautifulSoup(
        '<meta property="og:image" content="/og.jpg"><img src="a.png" srcset="s.jpg 300w, l.jpg 1200w">'
        '<picture><source srcset="p1.webp 1x, p2.webp 2x"></picture><img data-src="lazy.jpg">'
        '<img src="data:image/png;base64,AAAA"><a href="full.JPG">x</a><a href="page.html">y</a>',
        "lxml",
    )
    assert list(_page_images(soup)) == ["/og.jpg", "l.jpg", "a.png", "p2.webp", "lazy.jpg", "full.JPG"]


def test_host_limiter_spaces_requests_per_host() -> None:
    limiter = HostLimiter(0.1)
    start = time.monotonic()
    for _ in range(3):
        limiter.wait("http://a.example/x.jpg")
    limiter.wait("http://b.example/x.jpg")  # another host is not held back
    assert time.monotonic() - start >= 0.2


def test_icrawler_logging_is_silenced_and_restored() -> None:
    root_handlers = list(logging.getLogger().handlers)
    with icrawler_logging(verbose=False):
        assert logging.getLogger("downloader").getEffectiveLevel() > logging.CRITICAL
    with icrawler_logging(verbose=True):
        assert logging.getLogger("parser").isEnabledFor(logging.INFO)
    assert logging.getLogger().handlers == root_handlers


def test_engine_filters_are_icrawlers() -> None:
    ENGINES["bing"].check_filters(
        {"type": "photo", "size": "large", "license": "commercial", "date": "pastyear"}
    )
    ENGINES["google"].check_filters({"type": "photo", "size": "large", "date": "pastweek"})
    ENGINES["baidu"].check_filters({"type": "static", "size": "large"})
    assert ScrapeConfig(queries=("car",), filters={"type": "photo"}).filters == {"type": "photo"}

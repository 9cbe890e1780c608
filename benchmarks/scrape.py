"""Benchmark `corrode scrape`: images/s kept from a loopback server, and what duplicate checks cost.

    python benchmarks/scrape.py [--images 120] [--latency 0.05] [--photos DIR]

1. Throughput: `--engine urls` against a local HTTP server serving distinct 640x480 JPEGs
   (about the size of a search-engine result), each answer delayed by --latency seconds to stand
   in for a remote host. Everything a real run does is on: full decode, size checks, sha256 +
   pHash duplicate lookup, fsynced manifest rows. Measured with 1 and 4 download threads; the
   1-thread run is the baseline of the ratio. Goal: >= 20 images/s with 4 threads.
2. Dedupe cost per image: sha256 + pHash + lookup in an index of 10,000 / 100,000 images,
   against the full decode every kept image needs anyway (the baseline).
3. With --photos DIR (real photos): pHash distances of resized / re-encoded copies and between
   different photos, the figures behind the near-duplicate distance of 8.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import itertools
import statistics
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
from PIL import Image

from corrode.images import read_image
from corrode.scrape import ScrapeConfig, scrape
from corrode.scrape.dedupe import DedupeIndex, Entry, perceptual_hash


def picture(seed: int, width: int = 640, height: int = 480) -> bytes:
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(12, 16, 3), dtype=np.uint8)
    smooth = np.asarray(Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC)).astype(
        np.int16
    )
    noisy = np.clip(smooth + rng.integers(-12, 13, size=smooth.shape), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noisy).save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def serve(images: dict[str, bytes], latency: float) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            body = images.get(self.path)
            time.sleep(latency)
            if body is None:
                self.send_response(404)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def throughput(count: int, latency: float) -> None:
    images = {f"/{seed}.jpg": picture(seed) for seed in range(count)}
    size = statistics.mean(len(body) for body in images.values())
    server, base = serve(images, latency)
    print(
        f"throughput: {count} distinct 640x480 JPEGs (mean {size / 1024:.0f} KiB), "
        f"{latency * 1000:.0f} ms latency per response"
    )
    rates = {}
    try:
        for threads in (1, 4):
            with tempfile.TemporaryDirectory() as folder:
                sources = Path(folder) / "urls.txt"
                sources.write_text("\n".join(base + path for path in images) + "\n")
                cfg = ScrapeConfig(
                    engine="urls",
                    sources=sources,
                    out=Path(folder) / "raw",
                    threads=threads,
                    max_images=0,
                    timeout=10,
                )
                start = time.perf_counter()
                summary = scrape(cfg)
                elapsed = time.perf_counter() - start
            assert summary.new == count, summary
            rates[threads] = count / elapsed
            print(f"  {threads} thread(s): {count} kept in {elapsed:.2f} s = {rates[threads]:.1f} images/s")
    finally:
        server.shutdown()
        server.server_close()
    verdict = "meets" if rates[4] >= 20 else "MISSES"
    print(f"  4 threads / 1 thread: {rates[4] / rates[1]:.2f}x; {verdict} the goal of >= 20 images/s with 4")


def dedupe_cost(samples: int = 40) -> None:
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for seed in range(samples):
            path = Path(folder) / f"{seed}.jpg"
            path.write_bytes(picture(1000 + seed))
            paths.append(path)
        start = time.perf_counter()
        arrays = [read_image(path) for path in paths]
        decode = (time.perf_counter() - start) / samples
        datas = [path.read_bytes() for path in paths]
    start = time.perf_counter()
    hashes = [perceptual_hash(array) for array in arrays]
    phash_time = (time.perf_counter() - start) / samples
    start = time.perf_counter()
    for data in datas:
        hashlib.sha256(data).hexdigest()
    sha_time = (time.perf_counter() - start) / samples
    print(f"dedupe cost per 640x480 image (baseline: the full decode, {decode * 1000:.2f} ms):")
    print(f"  sha256 {sha_time * 1000:.3f} ms, pHash {phash_time * 1000:.2f} ms")
    rng = np.random.default_rng(0)
    for size in (10_000, 100_000):
        index = DedupeIndex()
        for number, value in enumerate(rng.integers(0, 2**63, size=size, dtype=np.int64)):
            index.add(Entry(f"{number}.jpg", f"{number}", int(value), 1, 1))
        start = time.perf_counter()
        for value in hashes:
            index.exact(hashlib.sha256(str(value).encode()).hexdigest())
            index.nearest(value)
        lookup = (time.perf_counter() - start) / samples
        total = sha_time + phash_time + lookup
        print(
            f"  lookup among {size:,} images {lookup * 1000:.3f} ms; sha256 + pHash + lookup "
            f"{total * 1000:.2f} ms = {total / decode:.2f}x the decode"
        )


def distances(folder: Path) -> None:
    photos = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp"))
    images = [Image.fromarray(read_image(p)) for p in photos]

    def recode(image: Image.Image, quality: int) -> Image.Image:
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=quality)
        return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")

    def crop(image: Image.Image, fraction: float) -> Image.Image:
        dx, dy = int(image.width * fraction), int(image.height * fraction)
        return image.crop((dx, dy, image.width - dx, image.height - dy))

    def short256(image: Image.Image) -> Image.Image:
        scale = 256 / min(image.size)
        return image.resize(
            (round(image.width * scale), round(image.height * scale)), Image.Resampling.BILINEAR
        )

    variants = {
        "half size": lambda im: im.resize((im.width // 2, im.height // 2), Image.Resampling.LANCZOS),
        "256 px short side": short256,
        "JPEG quality 40": lambda im: recode(im, 40),
        "half size + quality 60": lambda im: recode(im.resize((im.width // 2, im.height // 2)), 60),
        "brightness +10 %": lambda im: Image.eval(im, lambda v: min(255, int(v * 1.1))),
        "3 % border crop": lambda im: crop(im, 0.03),
        "8 % border crop": lambda im: crop(im, 0.08),
        "mirrored": lambda im: im.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
    }
    base = [perceptual_hash(np.asarray(im)) for im in images]

    def bits(a: int, b: int) -> int:
        return bin(a ^ b).count("1")

    print(f"pHash distances on {len(images)} photos from {folder}:")
    for name, change in variants.items():
        values = [bits(base[i], perceptual_hash(np.asarray(change(im)))) for i, im in enumerate(images)]
        print(f"  {name:24s} max {max(values):2d}  mean {statistics.mean(values):4.1f}")
    pairs = [bits(base[i], base[j]) for i, j in itertools.combinations(range(len(images)), 2)]
    print(
        f"  {'different photos':24s} min {min(pairs):2d}  mean {statistics.mean(pairs):4.1f} "
        f"({len(pairs)} pairs, {sum(p <= 8 for p in pairs)} within 8)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=120)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds added to every response")
    parser.add_argument("--photos", type=Path, help="folder of real photos for the pHash distance table")
    args = parser.parse_args()
    throughput(args.images, args.latency)
    dedupe_cost()
    if args.photos:
        distances(args.photos)


if __name__ == "__main__":
    main()

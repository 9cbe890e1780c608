"""Shared fixtures: the bad-input corpus every command that reads images is run against.

`corpus` is one folder of awkward-but-valid images (16-bit, CMYK, palette with transparency, grey,
EXIF-rotated, odd sizes, a 1200x90 strip, names with spaces and non-Latin letters, WebP, BMP, TIFF)
and broken entries (truncated JPEG and PNG, an empty file, text and HTML under image suffixes, a PNG
header claiming 20000x20000, an SVG, random bytes, a folder named `.jpg`, a symbolic link loop).
`Corpus.write_masks` gives each entry a mask, one of them the wrong size.
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SIDE = 64
# The image whose mask `write_masks` makes the wrong size (a good image everywhere else).
WRONG_MASK = "wrong mask.png"


def _photo(width: int, height: int, seed: int) -> np.ndarray:
    """A car-like picture: a bright ellipse on a darker, noisy background."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(20, 90, (height, width, 3), dtype=np.uint8)
    yy, xx = np.mgrid[0:height, 0:width]
    inside = ((xx - width / 2) / (width * 0.35)) ** 2 + ((yy - height / 2) / (height * 0.3)) ** 2 < 1
    pixels[inside] = (200, 60 + seed * 7 % 100, 40)
    return pixels


def car_mask(width: int, height: int) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width]
    return ((xx - width / 2) / (width * 0.35)) ** 2 + ((yy - height / 2) / (height * 0.3)) ** 2 < 1


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR (correct CRC) claims `width` x `height`, with a few bytes of pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(bytes(64))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _good_images() -> dict[str, tuple[bytes, tuple[int, int]]]:
    """name -> (file bytes, upright (width, height))."""
    rgb = Image.fromarray(_photo(SIDE, SIDE, 1))
    grey16 = Image.fromarray(_photo(SIDE, SIDE, 2)[..., 0].astype("<u2") * 257)
    palette = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    palette.info["transparency"] = 0
    rotated = Image.fromarray(_photo(48, SIDE, 4))  # stored 48 wide; EXIF 6 turns it upright to 64x48
    exif = rotated.getexif()
    exif[0x0112] = 6
    return {
        "grey16.png": (_encoded(grey16, "PNG"), (SIDE, SIDE)),
        "cmyk.jpg": (_encoded(rgb.convert("CMYK"), "JPEG", quality=90), (SIDE, SIDE)),
        "palette alpha.png": (_encoded(palette, "PNG", transparency=0), (SIDE, SIDE)),
        "grey.jpg": (_encoded(rgb.convert("L"), "JPEG"), (SIDE, SIDE)),
        "exif rotated.jpg": (_encoded(rotated, "JPEG", exif=exif), (SIDE, 48)),
        "odd_37x53.png": (_encoded(Image.fromarray(_photo(37, 53, 5)), "PNG"), (37, 53)),
        "strip_1200x90.jpg": (_encoded(Image.fromarray(_photo(1200, 90, 6)), "JPEG"), (1200, 90)),
        "name with spaces.png": (_encoded(Image.fromarray(_photo(SIDE, SIDE, 7)), "PNG"), (SIDE, SIDE)),
        "ржавчина_錆.png": (_encoded(Image.fromarray(_photo(SIDE, SIDE, 8)), "PNG"), (SIDE, SIDE)),
        "photo.webp": (_encoded(Image.fromarray(_photo(SIDE, SIDE, 9)), "WEBP", quality=90), (SIDE, SIDE)),
        "photo.bmp": (_encoded(Image.fromarray(_photo(SIDE, SIDE, 10)), "BMP"), (SIDE, SIDE)),
        "photo.tiff": (_encoded(Image.fromarray(_photo(SIDE, SIDE, 11)), "TIFF"), (SIDE, SIDE)),
        WRONG_MASK: (_encoded(Image.fromarray(_photo(SIDE, SIDE, 12)), "PNG"), (SIDE, SIDE)),
    }


def _bad_files() -> dict[str, tuple[bytes, str]]:
    """name -> (file bytes, a fragment of the reason the command must give)."""
    jpeg = _encoded(Image.fromarray(_photo(SIDE, SIDE, 13)), "JPEG")
    png = _encoded(Image.fromarray(_photo(SIDE, SIDE, 14)), "PNG")
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><rect width="64"/></svg>'
    return {
        "truncated.jpg": (jpeg[: len(jpeg) // 2], "truncated"),
        "truncated.png": (png[: len(png) // 2], "truncated"),
        "empty.jpg": (b"", "empty file"),
        "text.jpg": (b"this is a note, not a photo\n" * 4, "not an image"),
        "page.png": (b"<!doctype html><html><body>404 Not Found</body></html>\n", "not an image"),
        "bomb.png": (_png_header_only(20000, 20000), "too many pixels"),
        "drawing.svg": (svg, "SVG"),
        "random.jpg": (np.random.default_rng(0).bytes(4096), "not an image"),
    }


# Entries that are not files: a folder named like an image, and a link that points at itself.
# (The corpus also holds `again`, a link to its own folder, which is no image and must not be read.)
SPECIAL_BAD = {"folder.jpg": "directory", "loop.jpg": "symbolic link loop"}


@dataclass
class Corpus:
    folder: Path
    good: dict[str, tuple[int, int]]  # name -> upright (width, height)
    bad: dict[str, str]  # name -> fragment of its reason
    extra_bad: dict[str, str] = field(default_factory=dict)  # set by write_masks: the wrong-size mask

    @property
    def good_paths(self) -> list[Path]:
        return [self.folder / name for name in self.good]

    @property
    def bad_paths(self) -> list[Path]:
        return [self.folder / name for name in self.bad]

    def write_masks(self, masks: Path, *, suffix: str = ".png") -> Path:
        """A mask `<stem><suffix>` in `masks` for every entry; WRONG_MASK's is half the size."""
        masks.mkdir(parents=True, exist_ok=True)
        for name in [*self.good, *self.bad]:
            width, height = self.good.get(name, (SIDE, SIDE))
            if name == WRONG_MASK:
                width, height = width // 2, height // 2
            pixels = np.where(car_mask(width, height), 255, 0).astype(np.uint8)
            Image.fromarray(pixels, mode="L").save(masks / f"{Path(name).stem}{suffix}")
        self.extra_bad = {WRONG_MASK: "mask is 32x32"}
        return masks

    def with_masks_good(self) -> dict[str, tuple[int, int]]:
        return {name: size for name, size in self.good.items() if name not in self.extra_bad}


def write_corpus(folder: Path, *, bad: bool = True, good: bool = True) -> Corpus:
    folder.mkdir(parents=True, exist_ok=True)
    goods = _good_images() if good else {}
    for name, (data, _) in goods.items():
        (folder / name).write_bytes(data)
    bads: dict[str, str] = {}
    if bad:
        for name, (data, reason) in _bad_files().items():
            (folder / name).write_bytes(data)
            bads[name] = reason
        (folder / "folder.jpg").mkdir()
        (folder / "folder.jpg" / "notes.txt").write_text("a folder named like a photo\n")
        os.symlink("loop.jpg", folder / "loop.jpg")
        # A link to its own folder: a walker that follows links would go round forever.
        os.symlink(".", folder / "again")
        bads.update(SPECIAL_BAD)
    return Corpus(folder, {name: size for name, (_, size) in goods.items()}, bads)


def tree_digest(root: Path) -> dict[str, str]:
    """Every entry under `root` (links not followed) -> a hash of what it is and holds."""
    found: dict[str, str] = {}
    for directory, folders, files in os.walk(root):
        for name in [*folders, *files]:
            path = Path(directory) / name
            relative = str(path.relative_to(root))
            if path.is_symlink():
                found[relative] = "link:" + os.readlink(path)
            elif path.is_dir():
                found[relative] = "dir"
            else:
                found[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


@pytest.fixture
def corpus(tmp_path: Path) -> Corpus:
    return write_corpus(tmp_path / "corpus")


@pytest.fixture
def make_corpus() -> Callable[..., Corpus]:
    """`make_corpus(folder, bad=True, good=True)`: write the corpus (or its good or bad half) anywhere."""
    return write_corpus


@pytest.fixture
def one_thread() -> Iterator[None]:
    """One torch thread for the test: the machines are shared, and tiny models gain nothing from more."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

"""What a downloaded file must pass before it is kept, and the reason it is turned away otherwise.

icrawler opens only the header of a download, so a truncated JPEG or an HTML error page that
happens to start like an image is saved as if it were fine. Here every file is decoded in full
(through `corrode.images.read_image`, the project's single reader) before it is kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from corrode.images import IMAGE_SUFFIXES, MAX_PIXELS, ImageError, read_image

# Rejection kinds, also written to rejected.csv. A rerun retries only NETWORK rejections:
# the others are properties of what the server sent, and asking again gives the same answer.
NETWORK = "network"
HTTP = "http"
CONTENT = "content"
SIZE = "size"
DUPLICATE = "duplicate"
KINDS = (NETWORK, HTTP, CONTENT, SIZE, DUPLICATE)
RETRIED_KINDS = frozenset({NETWORK})

MIN_SIDE = 128
MAX_BYTES = 50_000_000

# PIL format name -> the suffix the kept file gets (the content decides, never the URL).
SUFFIXES = {
    "JPEG": "jpg",
    "MPO": "jpg",
    "PNG": "png",
    "WEBP": "webp",
    "GIF": "gif",
    "BMP": "bmp",
    "TIFF": "tif",
    "PPM": "ppm",
}


class Rejected(Exception):
    """A download that is not kept: `reason` is one human line, `kind` one of KINDS."""

    def __init__(self, reason: str, kind: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind


@dataclass(frozen=True)
class CheckedImage:
    array: np.ndarray  # (H, W, 3) uint8, upright
    width: int
    height: int
    suffix: str  # from the decoded format: jpg, png, webp, ...


def describe_non_image(data: bytes, content_type: str) -> str | None:
    """A clearer reason than "unrecognised format" for the usual impostors (HTML, JSON, SVG, text)."""
    head = data[:1024].lstrip().lower()
    served = f" served as {content_type}" if content_type else ""
    if head.startswith((b"<!doctype html", b"<html", b"<head", b"<body")) or b"<html" in head:
        return f"not an image: an HTML page{served}"
    if head.startswith(b"<svg") or (head.startswith(b"<?xml") and b"<svg" in head):
        return f"not a raster image: SVG{served}"
    if head.startswith((b"{", b"[")):
        return f"not an image: JSON{served}"
    if head and all(32 <= byte < 127 or byte in (9, 10, 13) for byte in head[:256]):
        return f"not an image: text{served}"
    return None


def check_download(
    path: Path,
    *,
    content_type: str = "",
    min_side: int = MIN_SIDE,
    max_pixels: int = MAX_PIXELS,
) -> CheckedImage:
    """Decode the downloaded file at `path` completely and apply the size limits; raise Rejected."""
    try:
        array = read_image(path, max_pixels=max_pixels)
    except ImageError as exc:
        reason = exc.reason
        if reason.startswith("too many pixels"):
            raise Rejected(reason, SIZE) from exc
        if reason.startswith("not an image"):
            with path.open("rb") as handle:
                reason = describe_non_image(handle.read(1024), content_type) or reason
        raise Rejected(reason, CONTENT) from exc
    height, width = array.shape[:2]
    if min(width, height) < min_side:
        raise Rejected(f"too small: {width}x{height}, short side under {min_side} px", SIZE)
    with Image.open(path) as image:
        image_format = image.format or ""
    suffix = SUFFIXES.get(image_format)
    if suffix is None or f".{suffix}" not in IMAGE_SUFFIXES:
        raise Rejected(f"unsupported image format {image_format or 'unknown'}", CONTENT)
    return CheckedImage(array=array, width=width, height=height, suffix=suffix)

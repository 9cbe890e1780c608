"""Every image read and write of the project.

Reads apply EXIF orientation, convert every mode to RGB (alpha composited on a
background), refuse decompression bombs by their header, and raise one
`ImageError` naming the file and the reason. Writes are atomic: a temporary
file in the same folder renamed into place, so a crash never leaves half a file.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import re
import tempfile
import threading
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from corrode.errors import FileError, UsageError, WriteError, write_reason

if TYPE_CHECKING:
    import torch

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".ppm", ".pgm"}
)
# Image formats people keep photos in that this project does not read: named, not skipped unseen.
UNSUPPORTED_SUFFIXES = {
    ".svg": "SVG is a vector drawing, not a photo; export it as PNG or JPEG",
    ".svgz": "SVG is a vector drawing, not a photo; export it as PNG or JPEG",
    ".heic": "HEIC is not supported; convert it to JPEG",
    ".heif": "HEIF is not supported; convert it to JPEG",
}
# 100 MP: a 12 MP phone photo passes with room to spare, a 20000x20000 bomb does not.
MAX_PIXELS = 100_000_000
WHITE = (255, 255, 255)
BLACK = (0, 0, 0)


class ImageError(FileError):
    """A file that cannot be used as an image (missing, corrupt, truncated, too large, ...)."""


def _missing_reason(path: Path) -> str:
    if not path.is_symlink():
        return "no such file"
    try:
        path.stat()
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symbolic link loop"
    return "broken symbolic link (its target does not exist)"


def _open(path: Path, max_pixels: int) -> Image.Image:
    if not path.exists():
        raise ImageError(path, _missing_reason(path))
    if path.is_dir():
        if path.suffix.lower() not in IMAGE_SUFFIXES and not any(map(is_image_file, path.iterdir())):
            raise ImageError(path, "folder holds no image files")
        raise ImageError(path, "is a directory, not an image file")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ImageError(path, f"cannot read ({exc.strerror or exc})") from exc
    if size == 0:
        raise ImageError(path, "empty file (0 bytes)")
    if path.suffix.lower() in UNSUPPORTED_SUFFIXES:
        raise ImageError(path, UNSUPPORTED_SUFFIXES[path.suffix.lower()])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(path)
    except PermissionError as exc:
        raise ImageError(path, "permission denied") from exc
    except UnidentifiedImageError as exc:
        raise ImageError(path, "not an image (unrecognised format)") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(path, f"too many pixels (limit {max_pixels:,})") from exc
    except OSError as exc:
        raise ImageError(path, f"cannot read ({exc})") from exc
    width, height = image.size
    if width * height > max_pixels:
        image.close()
        raise ImageError(path, f"too many pixels: {width}x{height} exceeds the limit of {max_pixels:,}")
    if width == 0 or height == 0:
        image.close()
        raise ImageError(path, f"image has no pixels ({width}x{height})")
    return image


def _load(image: Image.Image, path: Path) -> Image.Image:
    try:
        image.load()
        return ImageOps.exif_transpose(image)
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        reason = str(exc) or type(exc).__name__
        if "truncated" in reason or isinstance(exc, EOFError):
            reason = "truncated or corrupt image data"
        raise ImageError(path, reason) from exc


def _to_rgb(image: Image.Image, background: tuple[int, int, int]) -> np.ndarray:
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        values = np.asarray(image).astype(np.float64)
        peak = 65535.0 if mode.startswith("I;16") or values.max() > 255 else 255.0
        gray = np.clip(np.round(values * 255.0 / peak), 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode == "F":
        values = np.asarray(image, dtype=np.float64)
        peak = 1.0 if values.max() <= 1.0 else 255.0
        gray = np.clip(np.round(values * 255.0 / peak), 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    has_alpha = mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in image.info)
    if has_alpha:
        rgba = image.convert("RGBA")
        base = Image.new("RGBA", rgba.size, (*background, 255))
        return np.asarray(Image.alpha_composite(base, rgba).convert("RGB"))
    return np.asarray(image.convert("RGB"))


def read_image(
    path: str | Path,
    *,
    max_pixels: int = MAX_PIXELS,
    background: tuple[int, int, int] = WHITE,
) -> np.ndarray:
    """Read any common image file as an `(H, W, 3)` uint8 RGB array, upright per its EXIF."""
    path = Path(path)
    image = _open(path, max_pixels)
    with image:
        loaded = _load(image, path)
        # A writable copy: PIL's buffers are read-only, and callers (and torch) write in place.
        return np.array(_to_rgb(loaded, background), order="C")


def read_mask(path: str | Path, *, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read a mask file (GIF, PNG, ...) as an `(H, W)` bool array: True is the car."""
    path = Path(path)
    image = _open(path, max_pixels)
    with image:
        loaded = _load(image, path)
        if loaded.mode in ("RGBA", "LA"):
            values = np.asarray(loaded.getchannel("A"))
        else:
            values = np.asarray(loaded.convert("L"))
    # Masks come as 0/255 or as 0/1 label images; both are valid.
    threshold = 0 if values.max() <= 1 else 127
    return values > threshold


def image_size(path: str | Path, *, max_pixels: int = MAX_PIXELS) -> tuple[int, int]:
    """(width, height) from the header alone, EXIF rotation applied."""
    path = Path(path)
    image = _open(path, max_pixels)
    with image:
        width, height = image.size
        try:
            # A PNG may keep its eXIf chunk after the pixel data: finding it reads the whole file.
            orientation = image.getexif().get(0x0112, 1)
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise ImageError(path, "truncated or corrupt image data") from exc
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def checked_size(path: str | Path, *, max_pixels: int = MAX_PIXELS) -> tuple[int, int]:
    """(width, height) upright, after decoding every pixel: `image_size` that also finds a file cut
    short in its pixel data, at the cost of reading it."""
    path = Path(path)
    image = _open(path, max_pixels)
    with image:
        return _load(image, path).size


def to_tensor(array: np.ndarray) -> torch.Tensor:
    """`(H, W, 3)` uint8 -> `(3, H, W)` float in [0, 1]; `(H, W)` bool -> `(1, H, W)` float."""
    import torch

    if array.ndim == 2:
        return torch.from_numpy(np.array(array, dtype=np.float32))[None]
    return torch.from_numpy(np.array(array, order="C")).permute(2, 0, 1).float().div_(255.0)


def to_array(tensor: torch.Tensor) -> np.ndarray:
    """`(3, H, W)` float in [0, 1] -> `(H, W, 3)` uint8; `(1, H, W)` -> `(H, W)` uint8."""
    values = tensor.detach().float().clamp(0, 1).mul(255).round().byte().cpu()
    if values.shape[0] == 1:
        return values[0].numpy()
    return values.permute(1, 2, 0).numpy()


def _file_mode() -> int:
    # mkstemp creates 0600 files; a finished output gets the mode open() would give it.
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


_FILE_MODE = _file_mode()


# A temporary file is `.<stem>.<pid>.<random>.part<suffix>`: the pid says whether its writer is alive.
_TEMP_NAME = re.compile(r"^\..*\.(?P<pid>\d+)\.[a-z0-9_]{8}\.part(\.[^.]+)?$")
_swept: set[Path] = set()
_swept_lock = threading.Lock()


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def remove_stray_temps(folder: str | Path) -> list[Path]:
    """Remove the temporary files in `folder` that a killed writer (kill -9, power loss) left behind.

    Only this module's temporary names whose process is gone are touched, so a second process
    writing into the same folder at the same time keeps its own.
    """
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _TEMP_NAME.match(entry.name)
        if match and not _alive(int(match["pid"])) and entry.is_file(follow_symlinks=False):
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed


def temp_prefix(stem: str) -> str:
    return f".{stem}.{os.getpid()}."


def sweep_once(folder: Path) -> None:
    """The first write of this process into a folder clears what killed writers left there."""
    key = folder.absolute()
    with _swept_lock:
        if key in _swept:
            return
        _swept.add(key)
    remove_stray_temps(folder)


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it into place only if the block succeeds.

    An `OSError` from the block or the rename (a full disk, a read-only folder) becomes a
    `WriteError` naming `path`; the temporary file is removed and an older `path` stays as it was.
    The first write into a folder also removes the temporary files of killed writers
    (`remove_stray_temps`).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        sweep_once(path.parent)
        handle, temp_name = tempfile.mkstemp(
            prefix=temp_prefix(path.stem), suffix=f".part{path.suffix}", dir=path.parent
        )
    except OSError as exc:
        raise WriteError(path, write_reason(exc)) from exc
    os.close(handle)
    temp = Path(temp_name)
    try:
        yield temp
        os.chmod(temp, _FILE_MODE)
        os.replace(temp, path)
    except OSError as exc:
        raise WriteError(path, write_reason(exc)) from exc
    finally:
        temp.unlink(missing_ok=True)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as temp:
        temp.write_bytes(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def _pil_format(path: Path) -> str:
    suffix = path.suffix.lower()
    formats = {
        ".jpg": "JPEG",
        ".jpeg": "JPEG",
        ".png": "PNG",
        ".webp": "WEBP",
        ".gif": "GIF",
        ".bmp": "BMP",
        ".tif": "TIFF",
        ".tiff": "TIFF",
    }
    if suffix not in formats:
        raise UsageError(f"{path}: cannot write images with suffix {suffix!r}")
    return formats[suffix]


def write_image(path: str | Path, array: np.ndarray | Image.Image, *, quality: int = 95) -> Path:
    """Write an RGB uint8 array (or PIL image) atomically; the format follows the suffix."""
    path = Path(path)
    image = array if isinstance(array, Image.Image) else Image.fromarray(np.asarray(array))
    fmt = _pil_format(path)
    options: dict[str, object] = {}
    if fmt in ("JPEG", "WEBP"):
        options["quality"] = quality
        if image.mode not in ("RGB", "L"):
            image = image.convert("RGB")
    with atomic_path(path) as temp:
        image.save(temp, format=fmt, **options)
    return path


def write_mask(path: str | Path, mask: np.ndarray) -> Path:
    """Write a bool `(H, W)` mask as a black/white image (PNG or GIF by suffix), atomically."""
    values = np.where(np.asarray(mask, dtype=bool), 255, 0).astype(np.uint8)
    return write_image(path, Image.fromarray(values, mode="L"))


def resolve_safely(path: str | Path) -> Path:
    """`path.resolve()` that also works on a link that loops (Python 3.11 raises RuntimeError):
    such a link is named by its resolved folder and its own name."""
    path = Path(path)
    try:
        return path.resolve()
    except (RuntimeError, OSError):
        return path.parent.resolve() / path.name


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def is_image_entry(path: Path) -> bool:
    """An entry of a folder a command should read as an image: a file with an image suffix, or
    something that only looks like one (a folder named `x.jpg`, a broken or looping link, a format
    this project cannot read such as SVG), so that reading it names the problem instead of leaving
    it out unseen."""
    if path.name.startswith("."):
        return False
    if path.suffix.lower() in UNSUPPORTED_SUFFIXES:
        return True
    if not is_image_file(path):
        return False
    return path.is_file() or path.is_dir() or not path.exists()


def images_in(folder: Path, *, recursive: bool = False) -> list[Path]:
    """The image entries of `folder` (see `is_image_entry`), sorted."""
    children = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(child for child in children if is_image_entry(child))


def list_images(inputs: Iterable[str | Path], *, recursive: bool = False) -> list[Path]:
    """Expand files, folders and glob patterns into a sorted, de-duplicated list of image paths.

    A file named explicitly is kept whatever its suffix (reading it will say what is wrong);
    folders and globs contribute only entries with an image suffix (`is_image_entry`).
    """
    found: dict[Path, None] = {}
    for item in inputs:
        text = str(item)
        path = Path(text)
        if path.is_dir():
            found.update(dict.fromkeys(images_in(path, recursive=recursive)))
        elif path.exists() or path.is_symlink():
            found[path] = None
        elif glob.has_magic(text):
            matches = sorted(Path(m) for m in glob.glob(text, recursive=recursive))
            for match in matches:
                if is_image_entry(match):
                    found[match] = None
            if not matches:
                raise UsageError(f"{text}: no files match this pattern")
        else:
            raise UsageError(f"{text}: no such file or folder")
    return sorted(found)

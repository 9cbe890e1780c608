"""corrode.images: the bad-input corpus, mode conversion, EXIF, atomic writes, listing."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from corrode import images
from corrode.errors import UsageError
from corrode.images import ImageError, read_image, read_mask


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def bomb_png(path: Path, width: int = 20000, height: int = 20000) -> Path:
    """A PNG whose header claims width x height pixels, with almost no data behind it."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    data = zlib.compress(b"\x00" * 16)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", data)
        + _png_chunk(b"IEND", b"")
    )
    return path


def gradient(width: int = 40, height: int = 30) -> np.ndarray:
    ys, xs = np.mgrid[0:height, 0:width]
    return np.stack([xs * 255 // max(1, width - 1), ys * 255 // max(1, height - 1), 128 + 0 * xs], -1).astype(
        np.uint8
    )


@pytest.fixture
def good_jpeg(tmp_path: Path) -> Path:
    path = tmp_path / "good.jpg"
    Image.fromarray(gradient()).save(path, quality=95)
    return path


# --- the bad-input corpus: one typed error naming the file and the reason ------------------------


@pytest.mark.parametrize(
    ("name", "make", "reason"),
    [
        ("empty.jpg", lambda p: p.write_bytes(b""), "empty file"),
        ("text.jpg", lambda p: p.write_text("<html>not an image</html>"), "not an image"),
        ("bomb.png", bomb_png, "too many pixels"),
        ("missing.jpg", lambda p: None, "no such file"),
        ("folder.jpg", lambda p: p.mkdir(), "is a directory"),
    ],
)
def test_bad_files_raise_one_clear_error(tmp_path: Path, name: str, make, reason: str) -> None:
    path = tmp_path / name
    make(path)
    with pytest.raises(ImageError) as caught:
        read_image(path)
    message = str(caught.value)
    assert message.startswith(str(path))
    assert reason in message
    assert "\n" not in message


def test_truncated_jpeg(tmp_path: Path, good_jpeg: Path) -> None:
    data = good_jpeg.read_bytes()
    path = tmp_path / "truncated.jpg"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="truncated"):
        read_image(path)


def test_reading_never_modifies_the_input(tmp_path: Path, good_jpeg: Path) -> None:
    before = good_jpeg.read_bytes()
    read_image(good_jpeg)
    read_mask(good_jpeg)
    assert good_jpeg.read_bytes() == before


# --- modes -----------------------------------------------------------------------------------------


def test_16_bit_png_scaled_not_clipped(tmp_path: Path) -> None:
    values = np.array([[0, 257 * 100, 65535]], dtype=np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    rgb = read_image(path)
    assert rgb.dtype == np.uint8 and rgb.shape == (1, 3, 3)
    assert rgb[0, :, 0].tolist() == [0, 100, 255]


def test_cmyk_jpeg_becomes_rgb(tmp_path: Path) -> None:
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (8, 6), (0, 255, 255, 0)).save(path)  # pure red in CMYK
    rgb = read_image(path)
    assert rgb.shape == (6, 8, 3)
    red, green, blue = rgb.reshape(-1, 3).mean(axis=0)
    assert red > 200 and green < 60 and blue < 60


def test_palette_with_transparency_composited_on_background(tmp_path: Path) -> None:
    path = tmp_path / "palette.png"
    image = Image.new("P", (4, 4), 0)
    image.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    image.putpixel((0, 0), 1)
    image.info["transparency"] = 0
    image.save(path, transparency=0)
    white = read_image(path)
    black = read_image(path, background=(0, 0, 0))
    assert white[1, 1].tolist() == [255, 255, 255]
    assert black[1, 1].tolist() == [0, 0, 0]
    assert white[0, 0].tolist() == [0, 0, 255]


def test_rgba_and_la_composite(tmp_path: Path) -> None:
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[0, 0, 3] = 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    out = read_image(tmp_path / "a.png", background=(0, 255, 0))
    assert out[0, 0].tolist() == [255, 0, 0] and out[1, 1].tolist() == [0, 255, 0]
    Image.new("LA", (3, 3), (200, 255)).save(tmp_path / "la.png")
    assert read_image(tmp_path / "la.png")[0, 0].tolist() == [200, 200, 200]


def test_exif_rotation_applied(tmp_path: Path) -> None:
    path = tmp_path / "rotated.jpg"
    image = Image.fromarray(gradient(40, 20))
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    image.save(path, exif=exif.tobytes(), quality=95)
    rgb = read_image(path)
    assert rgb.shape == (40, 20, 3)
    assert images.image_size(path) == (20, 40)


def test_one_pixel_image(tmp_path: Path) -> None:
    path = tmp_path / "dot.png"
    Image.new("RGB", (1, 1), (10, 20, 30)).save(path)
    assert read_image(path).tolist() == [[[10, 20, 30]]]


def test_names_with_spaces_and_unicode(tmp_path: Path) -> None:
    folder = tmp_path / "rusty cars ünï"
    folder.mkdir()
    path = folder / "voiture rouillée 🚗.png"
    Image.new("RGB", (3, 2), (1, 2, 3)).save(path)
    assert read_image(path).shape == (2, 3, 3)
    assert images.list_images([folder]) == [path]


# --- masks -----------------------------------------------------------------------------------------


def test_read_mask_accepts_0_1_and_0_255_and_gif(tmp_path: Path) -> None:
    labels = np.array([[0, 1], [1, 0]], np.uint8)
    Image.fromarray(labels).save(tmp_path / "labels.png")
    Image.fromarray(labels * 255).save(tmp_path / "white.gif")
    expected = labels.astype(bool)
    assert (read_mask(tmp_path / "labels.png") == expected).all()
    assert (read_mask(tmp_path / "white.gif") == expected).all()


# --- writes ----------------------------------------------------------------------------------------


def test_write_image_round_trip_png(tmp_path: Path) -> None:
    array = gradient()
    path = images.write_image(tmp_path / "sub" / "out.png", array)
    assert (read_image(path) == array).all()
    assert [p.name for p in path.parent.iterdir()] == ["out.png"]


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "never.png"
    with pytest.raises(RuntimeError), images.atomic_path(target) as temp:
        temp.write_bytes(b"half")
        raise RuntimeError("crash mid-write")
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_replaces_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "note.txt"
    images.atomic_write_text(target, "first")
    images.atomic_write_text(target, "second")
    assert target.read_text() == "second"
    assert list(tmp_path.iterdir()) == [target]


def test_write_unknown_suffix_is_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        images.write_image(tmp_path / "x.xyz", gradient())


def test_mask_write_read_round_trip(tmp_path: Path) -> None:
    mask = np.zeros((5, 7), bool)
    mask[1:4, 2:6] = True
    for name in ("m.png", "m.gif"):
        images.write_mask(tmp_path / name, mask)
        assert (read_mask(tmp_path / name) == mask).all()


def test_tensor_round_trip() -> None:
    array = gradient(9, 5)
    tensor = images.to_tensor(array)
    assert tuple(tensor.shape) == (3, 5, 9) and float(tensor.max()) <= 1.0
    assert (images.to_array(tensor) == array).all()
    mask = np.eye(4, dtype=bool)
    assert (images.to_array(images.to_tensor(mask)) == mask * 255).all()


# --- listing ---------------------------------------------------------------------------------------


def test_list_images_folders_globs_recursive(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    for name in ("a.jpg", "b/c.PNG", "b/notes.txt", ".hidden.png"):
        (tmp_path / name).write_bytes(b"x")
    assert images.list_images([tmp_path]) == [tmp_path / "a.jpg"]
    assert images.list_images([tmp_path], recursive=True) == [tmp_path / "a.jpg", tmp_path / "b/c.PNG"]
    assert images.list_images([str(tmp_path / "b" / "*.PNG")]) == [tmp_path / "b/c.PNG"]
    # an explicitly named file is kept whatever its suffix: reading it says what is wrong
    assert images.list_images([tmp_path / "b/notes.txt"]) == [tmp_path / "b/notes.txt"]
    # duplicates collapse
    assert images.list_images([tmp_path / "a.jpg", tmp_path]) == [tmp_path / "a.jpg"]
    with pytest.raises(UsageError, match="no such file"):
        images.list_images([tmp_path / "nope"])
    with pytest.raises(UsageError, match="no files match"):
        images.list_images([str(tmp_path / "*.webp")])

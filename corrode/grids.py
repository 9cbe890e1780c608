"""Labelled image grids: synth previews, GAN sample sheets, the render `--level all` sheet."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from corrode.images import write_image

_LABEL_HEIGHT = 22
_GAP = 4


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has no sized default font
        return ImageFont.load_default()


def contact_sheet(
    rows: Sequence[Sequence[np.ndarray]],
    *,
    row_labels: Sequence[str] | None = None,
    column_labels: Sequence[str] | None = None,
    cell: int | None = None,
    background: tuple[int, int, int] = (255, 255, 255),
    cell_height: int | None = None,
) -> np.ndarray:
    """A grid of RGB uint8 images (each resized to fit a `cell` x `cell_height` box, square by
    default), with optional labels.

    Returns an `(H, W, 3)` uint8 array. Cells keep their aspect ratio, centred.
    """
    if not rows or not any(rows):
        raise ValueError("contact_sheet needs at least one image")
    first = next(img for row in rows for img in row)
    cell = cell or max(first.shape[:2])
    cell_height = cell_height or cell
    n_cols = max(len(r) for r in rows)
    left = 90 if row_labels else 0
    top = _LABEL_HEIGHT if column_labels else 0
    width = left + n_cols * (cell + _GAP) + _GAP
    height = top + len(rows) * (cell_height + _GAP) + _GAP
    sheet = Image.new("RGB", (width, height), background)
    draw = ImageDraw.Draw(sheet)
    font = _font(14)
    if column_labels:
        for c, label in enumerate(column_labels):
            x = left + _GAP + c * (cell + _GAP)
            draw.text((x + 4, 3), str(label), fill=(0, 0, 0), font=font)
    for r, row in enumerate(rows):
        y = top + _GAP + r * (cell_height + _GAP)
        if row_labels:
            draw.text((6, y + cell_height // 2 - 8), str(row_labels[r]), fill=(0, 0, 0), font=font)
        for c, array in enumerate(row):
            image = Image.fromarray(np.asarray(array, dtype=np.uint8))
            scale = min(cell / image.width, cell_height / image.height)
            size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
            image = image.resize(size, Image.Resampling.LANCZOS)
            x = left + _GAP + c * (cell + _GAP)
            sheet.paste(image, (x + (cell - size[0]) // 2, y + (cell_height - size[1]) // 2))
    return np.asarray(sheet)


def write_contact_sheet(path: str | Path, rows: Sequence[Sequence[np.ndarray]], **kwargs) -> Path:
    return write_image(path, contact_sheet(rows, **kwargs))

"""Photo-scanned rust textures (CC0, shipped in corrode/assets/textures/, credits in its SOURCES.md).

`load_textures()` reads them once per process and keeps a mip pyramid of each, so a patch of rust can
be sampled at any scale without aliasing. `prepare_texture` is how the shipped files were made from the
originals (downscaled, non-rust paint in-painted from the rust around it):

    python -m corrode.synth.textures ../shared/rust-textures corrode/assets/textures
"""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from corrode.errors import FileError

TEXTURE_DIR = Path(__file__).resolve().parent.parent / "assets" / "textures"
SIDE = 512
# Shipped file -> (original file, directional). A directional texture has streaks that follow gravity
# in the original photo, so it is only turned a little; the others are turned any way.
TEXTURES: dict[str, tuple[str, bool]] = {
    "rust_coarse_01.jpg": ("polyhaven_rust_coarse_01.jpg", False),
    "rusty_metal_05.jpg": ("polyhaven_rusty_metal_05.jpg", True),
    "rust004.jpg": ("ambientcg_Rust004.jpg", False),
    "rust006.jpg": ("ambientcg_Rust006.jpg", True),
}


@dataclass(frozen=True)
class Texture:
    name: str
    levels: tuple[np.ndarray, ...]  # (side / 2**k, side / 2**k, 3) float32 RGB 0..255, k = 0, 1, ...
    directional: bool

    @property
    def side(self) -> int:
        return self.levels[0].shape[0]


def rust_likeness(rgb: np.ndarray) -> np.ndarray:
    """True where an RGB uint8 texture shows rust: orange-to-brown hues with some saturation, or dark
    pits; False on the paint or bare steel some scans show around it (blue, green, grey, white)."""
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV).astype(np.float32)
    hue, saturation, value = hsv[..., 0] * 2, hsv[..., 1] / 255, hsv[..., 2] / 255
    return (((hue < 45) | (hue > 345)) & (saturation > 0.3)) | (value < 0.22)


def prepare_texture(source: Path, side: int = SIDE) -> np.ndarray:
    """The shipped form of one original: `side` px square, non-rust pixels in-painted (RGB uint8)."""
    bgr = cv2.imread(str(source), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"{source}: not an image")
    rgb = cv2.cvtColor(cv2.resize(bgr, (side, side), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
    foreign = ~rust_likeness(rgb)
    if foreign.any():
        grown = cv2.dilate(foreign.astype(np.uint8), np.ones((3, 3), np.uint8))
        rgb = cv2.inpaint(rgb, grown, 5, cv2.INPAINT_TELEA)
    return rgb


def _flatten_lighting(rgb: np.ndarray) -> np.ndarray:
    """The texture with its large-scale light falloff divided out, so that small tiles do not show
    the scan's lighting as repeating bands; the rust's own mottling (smaller than that) stays."""
    image = rgb.astype(np.float32)
    side = image.shape[0]
    # The falloff is smooth, so it is found on a 16x smaller copy (fast), tiled so that it wraps.
    cell, pad = 16, 8
    small = cv2.resize(image, (side // cell, side // cell), interpolation=cv2.INTER_AREA)
    small = np.pad(small, ((pad, pad), (pad, pad), (0, 0)), mode="wrap")
    small = cv2.GaussianBlur(small, (0, 0), side / 12 / cell)
    grown = cv2.resize(small, (small.shape[1] * cell, small.shape[0] * cell), interpolation=cv2.INTER_LINEAR)
    blurred = grown[pad * cell : pad * cell + side, pad * cell : pad * cell + side]
    luminance = blurred.mean(axis=2, keepdims=True)
    return np.clip(image * (luminance.mean() / np.maximum(luminance, 1.0)), 0, 255)


def _pyramid(rgb: np.ndarray) -> tuple[np.ndarray, ...]:
    levels = [_flatten_lighting(rgb)]
    while levels[-1].shape[0] > 16:
        levels.append(cv2.pyrDown(levels[-1], borderType=cv2.BORDER_WRAP))
    return tuple(levels)


@functools.cache
def load_textures(folder: Path = TEXTURE_DIR) -> tuple[Texture, ...]:
    """Every shipped texture with its pyramid; read once per process."""
    textures = []
    for name, (_, directional) in TEXTURES.items():
        bgr = cv2.imread(str(folder / name), cv2.IMREAD_COLOR)
        if bgr is None:
            reason = "rust texture missing or unreadable (reinstall corrode, or use --rust-style flat)"
            raise FileError(folder / name, reason)
        textures.append(Texture(name, _pyramid(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)), directional))
    return tuple(textures)


@functools.cache
def rust_palette(colours: int = 8, folder: Path = TEXTURE_DIR) -> tuple[tuple[float, float, float], ...]:
    """`colours` RGB colours in [0, 1], darkest first, that span the shipped rust: every texture's
    pixels (lighting flattened) sorted by luminance and split into equal-count bins, each bin's mean.
    A generator that mixes only these (`CycleGanConfig.rust_layer="palette"`) cannot paint off-colour."""
    if colours < 1:
        raise ValueError(f"colours must be >= 1, got {colours}")
    pixels = np.concatenate([texture.levels[0].reshape(-1, 3) for texture in load_textures(folder)])
    order = np.argsort(pixels @ np.array([0.299, 0.587, 0.114], np.float32), kind="stable")
    bins = np.array_split(pixels[order], colours)
    return tuple(tuple(float(v) / 255.0 for v in chunk.mean(axis=0)) for chunk in bins)


def sample_texture(
    texture: Texture,
    shape: tuple[int, int],
    pixels_per_texel: float,
    angle: float,
    offset: tuple[float, float],
    mirror: bool = False,
) -> np.ndarray:
    """A (H, W, 3) float32 crop of `texture` (tiled) turned by `angle` radians, each texture pixel
    covering `pixels_per_texel` output pixels, starting at `offset` (texture pixels)."""
    # The finest pyramid level that is still not magnified less than ~0.7x: no aliasing, little blur.
    level = 0
    while level + 1 < len(texture.levels) and pixels_per_texel * 2 ** (level + 1) <= 1.4:
        level += 1
    image = texture.levels[level]
    scale = 1.0 / (pixels_per_texel * 2**level)  # texture pixels per output pixel
    c, s = np.cos(angle) * scale, np.sin(angle) * scale
    flip = -1.0 if mirror else 1.0
    side = image.shape[0]
    matrix = np.array(
        [[flip * c, -s, offset[0] / 2**level % side], [flip * s, c, offset[1] / 2**level % side]], np.float64
    )
    height, width = shape
    return cv2.warpAffine(
        image,
        matrix,
        (width, height),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_WRAP,
    )


def main(arguments: list[str]) -> None:
    if len(arguments) != 2:
        raise SystemExit("usage: python -m corrode.synth.textures ORIGINALS_DIR OUT_DIR")
    source, out = Path(arguments[0]), Path(arguments[1])
    out.mkdir(parents=True, exist_ok=True)
    for name, (original, _) in TEXTURES.items():
        rgb = prepare_texture(source / original)
        cv2.imwrite(str(out / name), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
        print(f"{out / name}: {(out / name).stat().st_size} bytes")


if __name__ == "__main__":
    main(sys.argv[1:])

"""Run a fully convolutional generator on an image larger than memory allows whole: tiles with overlap,
blended with a raised-cosine window, instance-norm statistics shared by every tile.

Why the statistics: the CycleGAN generator normalises each feature map by its own mean and variance
(instance norm). A tile run alone normalises by the tile's statistics, which differ from the whole
image's, so neighbouring tiles come out in different tones and the seams show. `SharedNormStats`
records every instance norm's per-channel mean and variance on one whole pass of the image scaled
down to `stats_side` px, and then makes each tile normalise with those numbers instead of its own, as
the whole image would (tests/test_render.py measures tiled against whole).

Blending: each tile's outer quarter-overlap is dropped (reflection padding at a tile's edge is not the
image's real context), and the next half-overlap ramps up with a raised cosine whose complement ramps
the neighbour down, so the weights sum to one. Offsets and sizes are multiples of 4, the generator's
total stride, so every tile samples the same pixel grid as the whole image.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

MULTIPLE = 4
DEFAULT_OVERLAP = 64
DEFAULT_STATS_SIDE = 512
# Bytes of activations per pixel per base channel for one inference pass, measured with
# benchmarks/render.py (peak resident memory over the input's size, fp32, ResNet generator).
BYTES_PER_PIXEL_CHANNEL = 24


def round_to_multiple(value: float, multiple: int = MULTIPLE) -> int:
    """The nearest multiple of `multiple`, at least `multiple`."""
    return max(multiple, int(round(value / multiple)) * multiple)


class SharedNormStats:
    """Hooks on every `nn.InstanceNorm2d` of `module`: `record()` stores each call's statistics,
    `replay()` normalises with the stored ones (call by call, in the same order) instead."""

    def __init__(self, module: nn.Module) -> None:
        self.norms = [m for m in module.modules() if isinstance(m, nn.InstanceNorm2d)]
        self.stats: dict[int, list[tuple[torch.Tensor, torch.Tensor]]] = {}
        self._calls: dict[int, int] = {}

    def __bool__(self) -> bool:
        return bool(self.norms)

    @contextmanager
    def _hooked(self, hook: Callable[..., torch.Tensor | None]) -> Iterator[None]:
        handles = [norm.register_forward_hook(hook) for norm in self.norms]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

    @contextmanager
    def record(self) -> Iterator[None]:
        self.stats = {}

        def hook(norm: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
            x = inputs[0].float()
            var, mean = torch.var_mean(x, dim=(2, 3), keepdim=True, unbiased=False)
            self.stats.setdefault(id(norm), []).append((mean, var))

        with self._hooked(hook):
            yield

    @contextmanager
    def replay(self, sample: int = 0) -> Iterator[None]:
        """Normalise with the recorded statistics of batch item `sample` (every tile of one image)."""
        self._calls = {}

        def hook(norm: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> torch.Tensor:
            call = self._calls.get(id(norm), 0)
            self._calls[id(norm)] = call + 1
            mean, var = self.stats[id(norm)][call]
            mean, var = mean[sample : sample + 1], var[sample : sample + 1]
            x = inputs[0].float()
            return ((x - mean) * torch.rsqrt(var + norm.eps)).to(output.dtype)

        with self._hooked(hook):
            yield


def window(length: int, overlap: int, ramp_start: bool, ramp_end: bool) -> torch.Tensor:
    """`(length,)` blending weights: 0 over the outer quarter-overlap, a raised-cosine ramp over the next
    half-overlap, 1 inside; sides on the image's border (`ramp_* = False`) stay 1 to the edge."""
    weights = torch.ones(length)
    drop, ramp = overlap // 4, overlap // 2
    if ramp > 0:
        rise = 0.5 - 0.5 * torch.cos(math.pi * (torch.arange(ramp) + 0.5) / ramp)
        if ramp_start:
            weights[:drop] = 0
            weights[drop : drop + ramp] = rise
        if ramp_end:
            weights[length - drop :] = 0
            weights[length - drop - ramp : length - drop] = rise.flip(0)
    return weights


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Tile offsets along one axis (multiples of 4), the last one flush with the end."""
    if tile >= length:
        return [0]
    stride = max(MULTIPLE, (tile - overlap) // MULTIPLE * MULTIPLE)
    starts = list(range(0, length - tile, stride))
    starts.append(length - tile)
    return starts


def run_tiled(
    run: Callable[[torch.Tensor], torch.Tensor],
    image: torch.Tensor,
    *,
    tile: int,
    overlap: int = DEFAULT_OVERLAP,
) -> torch.Tensor:
    """`run` (a `(1, 3, h, w) -> (1, 3, h, w)` translation) over `image` `(1, 3, H, W)` in tiles of
    `tile` px overlapping by `overlap` px, blended. H, W, `tile` and `overlap` are multiples of 4."""
    _, channels, height, width = image.shape
    if tile >= height and tile >= width:
        return run(image)
    overlap = min(overlap, tile // 2) // MULTIPLE * MULTIPLE
    total = torch.zeros(1, channels, height, width)
    weight = torch.zeros(1, 1, height, width)
    rows, columns = tile_starts(height, tile, overlap), tile_starts(width, tile, overlap)
    for y in rows:
        tile_height = min(tile, height)
        wy = window(tile_height, overlap, y > 0, y + tile_height < height)
        for x in columns:
            tile_width = min(tile, width)
            wx = window(tile_width, overlap, x > 0, x + tile_width < width)
            out = run(image[:, :, y : y + tile_height, x : x + tile_width]).float().cpu()
            w = (wy[:, None] * wx[None, :])[None, None]
            total[:, :, y : y + tile_height, x : x + tile_width] += out * w
            weight[:, :, y : y + tile_height, x : x + tile_width] += w
    return total / weight.clamp_min(1e-8)


def translate_large(
    run: Callable[[torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    *,
    tile: int,
    overlap: int = DEFAULT_OVERLAP,
    module: nn.Module | None = None,
    stats_side: int = DEFAULT_STATS_SIDE,
) -> torch.Tensor:
    """`run` over `images` `(B, 3, H, W)` (H, W multiples of 4), whole when `tile` covers them, else
    tiled per image. With `module` (the generators), instance-norm statistics come from one whole
    pass at `stats_side` px and are shared by every tile of that image."""
    height, width = images.shape[-2:]
    if tile <= 0 or (tile >= height and tile >= width):
        return run(images)
    shared = SharedNormStats(module) if module is not None else None
    results = []
    for index in range(images.shape[0]):
        image = images[index : index + 1]
        if shared:
            scale = min(1.0, stats_side / max(height, width))
            small_size = (round_to_multiple(height * scale), round_to_multiple(width * scale))
            small = F.interpolate(image, size=small_size, mode="area") if scale < 1 else image
            with shared.record():
                run(small)
            with shared.replay():
                results.append(run_tiled(run, image, tile=tile, overlap=overlap))
        else:
            results.append(run_tiled(run, image, tile=tile, overlap=overlap))
    return torch.cat(results)


def available_memory(device: torch.device) -> int:
    """Bytes free for activations on `device` (CUDA: free memory; CPU: MemAvailable, else 4 GiB)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 4 << 30


def automatic_tile(side: int, base_channels: int, device: torch.device, *, fraction: float = 0.25) -> int:
    """0 (run whole) when a `side` x `side` pass fits in `fraction` of the free memory, else the largest
    tile (a multiple of 4, at least 256) that does."""
    budget = available_memory(device) * fraction
    per_pixel = BYTES_PER_PIXEL_CHANNEL * max(1, base_channels)
    if side * side * per_pixel <= budget:
        return 0
    return max(256, int(math.sqrt(budget / per_pixel)) // MULTIPLE * MULTIPLE)

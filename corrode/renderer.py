"""The renderer: a translator (and a segmenter, unless masks are given) turning photos into the same
photos with the car at a corrosion level. Shared by `render` (which adds files, batches and outputs)
and `evaluate` (which checks that nothing outside the car changes).

Per photo: the car's square (with a margin) is resized to the generator's working size, the background
blacked out as in training, the generator run, and its change composited back (corrode.compositing).

The working size (`gan_size`): "model" is the size the generator was trained at; an int N runs it on
the car's square at N px; "native" at the square's own size up to `max_side`. The generator is fully
convolutional, so any multiple of 4 works; large squares are tiled (corrode.tiling) when a whole pass
would not fit in memory, or as `tile` says.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from corrode.compositing import Square, car_square, composite, generator_input, to_uint8
from corrode.errors import UsageError
from corrode.images import ImageError
from corrode.segment import Segments, segment_masks
from corrode.tiling import DEFAULT_OVERLAP, automatic_tile, round_to_multiple, translate_large
from corrode.translate import Translates

MODEL_SIZE = "model"
NATIVE_SIZE = "native"
DEFAULT_MAX_SIDE = 2048


class NoCarError(ImageError):
    """The segmenter found no car in a photo (or a given mask is empty)."""


@dataclass
class Rendering:
    """One photo rendered at several levels: full-size composites (or masked squares) per level."""

    image: np.ndarray
    mask: np.ndarray
    square: Square
    source: np.ndarray
    source_mask: np.ndarray
    composited: bool = True
    generated: dict[str, np.ndarray] = field(default_factory=dict)
    outputs: dict[str, np.ndarray] = field(default_factory=dict)


def working_size(gan_size: int | str, model_size: int, side: int, max_side: int) -> int:
    """The generator's input side for a car square of `side` photo px (a multiple of 4)."""
    if gan_size == MODEL_SIZE:
        return model_size
    if gan_size == NATIVE_SIZE:
        return round_to_multiple(min(side, max_side))
    return round_to_multiple(int(gan_size))


class Renderer:
    """Turns photos (+ masks or a segmenter) into renderings, batching the generator calls."""

    def __init__(
        self,
        translator: Translates,
        segmenter: Segments | None = None,
        *,
        margin: float = 0.08,
        feather: float = 2.0,
        keep_detail: bool = True,
        mask_resolution: int = 512,
        composite: bool = True,
        gan_size: int | str = MODEL_SIZE,
        max_side: int = DEFAULT_MAX_SIDE,
        tile: int = 0,
        overlap: int = DEFAULT_OVERLAP,
    ) -> None:
        self.translator = translator
        self.segmenter = segmenter
        self.margin = margin
        self.feather = feather
        self.keep_detail = keep_detail
        self.mask_resolution = mask_resolution
        self.composite = composite
        self.gan_size = gan_size
        self.max_side = max_side
        self.tile = tile
        self.overlap = overlap

    @property
    def size(self) -> int:
        """The size the generator was trained at."""
        return int(self.translator.image_size)

    def masks(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        if self.segmenter is None:
            raise UsageError("no segmentation model and no --mask: cannot find the car")
        return segment_masks(self.segmenter, images, self.mask_resolution)

    def _tiling(self, side: int) -> tuple[int, int]:
        """(tile, statistics side) for a square of `side` px: `tile` as given (statistics at full
        size), else by free memory (corrode.tiling.automatic_tile); (0, 0) runs it whole."""
        if self.tile > 0:
            return self.tile, 0
        generators = getattr(self.translator, "generators", None)
        config = getattr(generators, "config", None)
        device = getattr(self.translator, "device", None)
        if config is None or device is None:
            return 0, 0
        return automatic_tile(side, int(config.base_channels), device)

    def generate(self, sources: Sequence[np.ndarray], level: str) -> list[np.ndarray]:
        """`(S, S, 3)` float inputs (one S) -> the generator's `(S, S, 3)` float outputs at `level`."""
        import torch
        from torch import nn

        batch = torch.from_numpy(np.stack(sources)).permute(0, 3, 1, 2).contiguous()
        side = batch.shape[-1]
        generators = getattr(self.translator, "generators", None)
        with torch.inference_mode():
            if side == self.size and self.tile <= 0:
                result = self.translator.to_level(batch, level)
            else:
                tile, stats_side = self._tiling(side)
                result = translate_large(
                    lambda images: self.translator.to_level(images, level),
                    batch,
                    tile=tile,
                    overlap=self.overlap,
                    module=generators if isinstance(generators, nn.Module) else None,
                    stats_side=stats_side,
                )
        result = result.detach().float().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()
        return list(result)

    def prepare(self, image: np.ndarray, mask: np.ndarray) -> Rendering:
        if mask.shape != image.shape[:2]:
            raise ValueError(
                f"mask is {mask.shape[1]}x{mask.shape[0]} but the photo is {image.shape[1]}x{image.shape[0]}"
            )
        if not mask.any():
            raise ValueError("no car found (the mask is empty)")
        square = car_square(mask, self.margin)
        size = working_size(self.gan_size, self.size, square.side, self.max_side)
        source, source_mask = generator_input(image, mask, square, size)
        return Rendering(image, mask, square, source, source_mask, composited=self.composite)

    def render(
        self,
        images: Sequence[np.ndarray],
        level_names: Sequence[str],
        masks: Sequence[np.ndarray] | None = None,
    ) -> list[Rendering]:
        """Render each image at each level; `masks` (bool, image-sized) skip the segmenter."""
        masks = list(masks) if masks is not None else self.masks(images)
        renderings = [self.prepare(image, mask) for image, mask in zip(images, masks, strict=True)]
        self.finish(renderings, level_names)
        return renderings

    def finish(self, renderings: Sequence[Rendering], level_names: Sequence[str]) -> None:
        """Run the generator for prepared renderings (one batch per level and working size) and
        composite."""
        by_size: dict[int, list[Rendering]] = {}
        for rendering in renderings:
            by_size.setdefault(rendering.source.shape[0], []).append(rendering)
        for size, group in by_size.items():
            # The soft edge is set in training-size pixels, so it looks the same at every working size.
            feather = self.feather * size / self.size
            sources = [r.source for r in group]
            for name in level_names:
                for rendering, generated in zip(group, self.generate(sources, name), strict=True):
                    # The generator never sees the background: keep it black in the masked output too.
                    rendering.generated[name] = generated * rendering.source_mask[:, :, None]
                    if self.composite:
                        rendering.outputs[name] = composite(
                            rendering.image,
                            rendering.mask,
                            rendering.square,
                            rendering.source,
                            generated,
                            feather=feather,
                            keep_detail=self.keep_detail,
                        )
                    else:
                        rendering.outputs[name] = to_uint8(rendering.generated[name])

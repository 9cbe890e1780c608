"""`corrode augment`: write augmented copies of image + mask pairs (the ops are in `corrode.augmentation`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from corrode.augmentation import (  # noqa: F401  (re-exported for the command's users)
    PARTIAL_VIEWS,
    PRESETS,
    RANDOM,
    VIEWS,
    PipelineConfig,
    augment_batch,
    build_pipeline,
    partial_view_boxes,
    partial_views,
)
from corrode.config import require
from corrode.errors import CorrodeError, FileError, UsageError

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class AugmentConfig:
    """`corrode augment`: pairs in `source` (Carvana or images/ + masks/), pairs out in `out`.

    Presets compose in the order given by PRESETS: with both, each partial view gets `copies`
    random variants (`<stem>_left_rand00`); with `random` alone, the whole image does (`<stem>_rand00`).
    """

    source: Path
    out: Path
    presets: tuple[str, ...] = (PARTIAL_VIEWS,)
    copies: int = 1
    seed: int = 0
    device: str = "auto"
    batch_size: int = 8
    view_fraction: float = 0.5
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)

    def __post_init__(self) -> None:
        unknown = [p for p in self.presets if p not in PRESETS]
        require(not unknown, f"unknown preset {', '.join(unknown)}: expected {' or '.join(PRESETS)}")
        require(len(self.presets) > 0, "give at least one preset")
        require(self.copies >= 1, f"copies must be at least 1, got {self.copies}")
        require(
            self.copies == 1 or RANDOM in self.presets,
            f"--copies {self.copies} needs the {RANDOM} preset (partial views are deterministic)",
        )
        require(self.batch_size >= 1, f"batch_size must be at least 1, got {self.batch_size}")
        require(0.0 < self.view_fraction <= 1.0, f"view_fraction must lie in (0, 1]: {self.view_fraction}")


@dataclass
class AugmentResult:
    pairs: int = 0  # input pairs seen
    written: int = 0  # output pairs written
    failed: list[str] = field(default_factory=list)  # one "path: reason" line per failed input


def _batch_seed(seed: int, batch_index: int, copy: int) -> int:
    return int(np.random.SeedSequence([seed, batch_index, copy]).generate_state(1)[0])


def _write_pair(out: Path, stem: str, image: np.ndarray, mask: np.ndarray) -> None:
    from corrode.images import write_image, write_mask

    image_path = out / "images" / f"{stem}.png"
    mask_path = out / "masks" / f"{stem}.png"
    try:
        write_mask(mask_path, mask)
        write_image(image_path, image)
    except OSError as exc:
        # Never leave a mask without its image.
        mask_path.unlink(missing_ok=True)
        raise FileError(image_path, f"cannot write ({exc.strerror or exc})") from exc


def augment(config: AugmentConfig, on_pair: Callable[[], None] | None = None) -> AugmentResult:
    """Augment every pair of `config.source` into `config.out/images` and `config.out/masks`.

    Inputs are never modified. A bad pair (unreadable file, mask of another size, empty mask for
    partial views) is recorded in `AugmentResult.failed` and the others are still processed.
    `on_pair` is called once per input pair, done or failed. With the random preset, results
    depend on the seed and on the batch size (kornia draws a batch's parameters together).
    """
    import torch

    from corrode.config import save_config
    from corrode.datasets import check_same_size, find_pairs, resize_pair
    from corrode.device import choose_device
    from corrode.images import read_image, read_mask, to_array, to_tensor

    source, out = Path(config.source), Path(config.out)
    if out.resolve() == source.resolve():
        raise UsageError(f"{out}: the output folder must not be the input folder {source}")
    pairs = find_pairs(source)
    device = choose_device(config.device)
    use_views = PARTIAL_VIEWS in config.presets
    pipeline = build_pipeline(config.pipeline).to(device) if RANDOM in config.presets else None
    size = config.pipeline.size
    result = AugmentResult(pairs=len(pairs))

    def done() -> None:
        if on_pair is not None:
            on_pair()

    digits = max(2, len(str(config.copies - 1)))
    for batch_index, start in enumerate(range(0, len(pairs), config.batch_size)):
        # (source image, output stem, (3, S, S) image, (1, S, S) mask) before the random preset
        items: list[tuple[Path, str, torch.Tensor, torch.Tensor]] = []
        for pair in pairs[start : start + config.batch_size]:
            try:
                image = read_image(pair.image)
                mask = read_mask(pair.mask)
                check_same_size(image, mask, pair.image, pair.mask)
                if use_views:
                    if not mask.any():
                        raise FileError(pair.mask, "mask is empty: no car to crop partial views from")
                    image_batch = to_tensor(image)[None].to(device)
                    mask_batch = to_tensor(mask)[None].to(device)
                    views = partial_views(image_batch, mask_batch, size, config.view_fraction)
                    for view, (view_image, view_mask) in views.items():
                        items.append((pair.image, f"{pair.stem}_{view}", view_image[0], view_mask[0]))
                else:
                    small_image, small_mask = resize_pair(image, mask, size)
                    assert small_mask is not None
                    image_tensor, mask_tensor = to_tensor(small_image), to_tensor(small_mask)
                    items.append((pair.image, pair.stem, image_tensor.to(device), mask_tensor.to(device)))
            except CorrodeError as exc:
                result.failed.append(str(exc))
                done()
        if not items:
            continue
        outputs = items
        if pipeline is not None:
            batch_images = torch.stack([item[2] for item in items])
            batch_masks = torch.stack([item[3] for item in items])
            outputs = []
            for copy in range(config.copies):
                seed = _batch_seed(config.seed, batch_index, copy)
                new_images, new_masks = augment_batch(batch_images, batch_masks, pipeline, seed=seed)
                for index, (path, stem, _, _) in enumerate(items):
                    name = f"{stem}_rand{copy:0{digits}d}"
                    outputs.append((path, name, new_images[index], new_masks[index]))
        failed_sources: set[Path] = set()
        for path, stem, image_tensor, mask_tensor in outputs:
            if path in failed_sources:
                continue
            try:
                _write_pair(out, stem, to_array(image_tensor), to_array(mask_tensor) > 127)
                result.written += 1
            except FileError as exc:
                failed_sources.add(path)
                result.failed.append(str(exc))
        for _ in dict.fromkeys(item[0] for item in items):
            done()
    save_config(config, out / "config.json")
    return result

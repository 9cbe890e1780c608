"""`corrode demo`: the whole method on the installed package alone, small enough for a laptop CPU.

Makes a small synthetic data set, trains a small segmenter and a small GAN on it (the GAN's
`recommended` preset), cleans the masks with the paper's optimizer, renders a few new synthetic
cars at every level, and writes a grid and a timeline. Everything it makes is trained on synthetic
cars and lives under one folder:

    OUT/data/      synthetic set (Carvana-style pairs + level folders)    corrode synth
                   + seg_pairs/: studio pairs and level images with masks
    OUT/runs/seg/  segmenter run                                          corrode train-seg
    OUT/masked/    masked level images                                    corrode optimize-masks
    OUT/runs/gan/  GAN run                                                corrode train-gan
    OUT/photos/    new clean cars on outdoor backgrounds
    OUT/render/    each photo at each level, one grid per photo           corrode render
    OUT/demo-grid.png, OUT/timeline.gif
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from corrode import levels
from corrode.config import require, save_config
from corrode.errors import UsageError

CONFIG_NAME = "demo-config.json"
GRID_NAME = "demo-grid.png"
TIMELINE_NAME = "timeline.gif"
# What the demo writes inside OUT: the only paths --overwrite may remove.
PARTS = ("data", "runs", "masked", "photos", "render", GRID_NAME, TIMELINE_NAME, CONFIG_NAME)
# Outdoor scenes for the rendered photos: the GAN never saw these cars.
PHOTO_SEED_OFFSET = 10_000


@dataclass(frozen=True)
class DemoConfig:
    out: Path = Path("corrode-demo")
    size: int = 64
    clean_cars: int = 64
    rusty_cars: int = 40
    seg_cars: int = 12
    seg_views: int = 8
    seg_epochs: int = 5
    seg_width: float = 0.5
    seg_decoder_channels: tuple[int, ...] = (64, 32, 16, 16)
    # 16 steps per epoch (64 clean cars, 4 per batch): 192 GAN steps in all.
    gan_epochs: int = 12
    base_channels: int = 16
    residual_blocks: int = 3
    photos: int = 4
    photo_size: int = 384
    timeline_frames: int = 8
    seed: int = 0
    device: str = "auto"
    overwrite: bool = False

    def __post_init__(self) -> None:
        require(self.size >= 32 and self.size % 32 == 0, f"size must be a multiple of 32, got {self.size}")
        require(
            self.clean_cars >= 4 and self.rusty_cars >= 2, "need at least 4 clean and 2 rusty cars per level"
        )
        require(self.seg_cars >= 2 and 1 <= self.seg_views <= 8, "seg_cars >= 2 and seg_views 1..8")
        require(self.seg_epochs >= 1 and self.gan_epochs >= 1, "epochs must be >= 1")
        require(self.photos >= 1, "photos must be >= 1")
        require(self.photo_size >= self.size, f"photo_size must be >= size ({self.size})")


@dataclass
class DemoResult:
    out: Path
    grid: Path
    timeline: Path
    renders: list[Path]
    seg_run: Path
    gan_run: Path
    seconds: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _prepare(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        ours = (out / CONFIG_NAME).is_file()
        if not ours:
            raise UsageError(f"{out}: folder is not empty and holds no demo; pick another --out")
        if not overwrite:
            raise UsageError(f"{out}: already holds a demo; --overwrite redoes it, or pick another --out")
        for name in PARTS:
            path = out / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    out.mkdir(parents=True, exist_ok=True)


def segmentation_pairs(data: Path, out: Path) -> Path:
    """An images/ + masks/ pair folder from the synthetic set: the studio (Carvana-style) pairs and
    every level image with its drawn mask, so the segmenter also learns cars outdoors."""
    images, masks = out / "images", out / "masks"
    images.mkdir(parents=True, exist_ok=True)
    masks.mkdir(parents=True, exist_ok=True)
    for image in sorted((data / "carvana" / "train").iterdir()):
        shutil.copyfile(image, images / image.name)
    for mask in sorted((data / "carvana" / "train_masks").iterdir()):
        shutil.copyfile(mask, masks / mask.name.replace("_mask", ""))
    for name in levels.NAMES:
        for image in sorted((data / "levels" / name).iterdir()):
            shutil.copyfile(image, images / f"{name}_{image.name}")
            shutil.copyfile(data / "levels_masks" / name / image.name, masks / f"{name}_{image.name}")
    return out


def draw_photos(cfg: DemoConfig, folder: Path) -> tuple[list[Path], list[Any]]:
    """Clean cars the models never saw, full views on outdoor backgrounds: PNG files and their
    true masks (used only where the small segmenter finds no car)."""
    import numpy as np

    from corrode.images import write_image
    from corrode.synth import draw_scene
    from corrode.synth.backgrounds import OUTDOOR

    colours = ("bright blue", "red", "white", "yellow", "teal", "silver", "orange", "black")
    views = ("side", "front-quarter", "rear-quarter")
    paths, masks = [], []
    for index in range(cfg.photos):
        rng = np.random.default_rng(cfg.seed + PHOTO_SEED_OFFSET + index)
        scene = draw_scene(
            rng,
            cfg.photo_size,
            levels.CLEAN.name,
            colour=colours[index % len(colours)],
            view=views[index % len(views)],
            background=OUTDOOR[index % len(OUTDOOR)],
        )
        paths.append(write_image(folder / f"car{index}.png", scene.image))
        masks.append(scene.mask)
    return paths, masks


def demo(
    cfg: DemoConfig,
    *,
    stage: Callable[[str], Any] | None = None,
    progress: Any = None,
    gan_progress: Callable[[int, int, dict[str, float]], Any] | None = None,
) -> DemoResult:
    """Run the whole demo into `cfg.out`; `stage(name)` is told as each step begins.

    `progress` (a started Rich Progress) is handed to the segmenter's training, `gan_progress` to
    the GAN's.
    """
    from corrode.grids import write_contact_sheet
    from corrode.images import read_image, write_image
    from corrode.optimize_masks import OptimizeMasksConfig, optimize_masks
    from corrode.render import (
        RenderConfig,
        cell_size,
        load_models,
        make_renderer,
        timeline_frames,
        timeline_stages,
        write_gif,
    )
    from corrode.synth import SynthConfig, synth
    from corrode.train_gan import TrainGanConfig, train_gan, with_preset
    from corrode.train_seg import TrainSegConfig, train_seg

    out = Path(cfg.out)
    _prepare(out, cfg.overwrite)
    save_config(cfg, out / CONFIG_NAME)
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    started: list[str] = []

    def begin(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        if started:
            seconds[started[-1]] = now - clock
        started.append(name)
        clock = now
        if stage is not None:
            stage(name)

    begin("synth")
    counts = {levels.CLEAN.name: cfg.clean_cars, **{name: cfg.rusty_cars for name in levels.RUSTY_NAMES}}
    data = synth(
        SynthConfig(
            out=out / "data",
            carvana_cars=cfg.seg_cars,
            carvana_views=cfg.seg_views,
            size=cfg.size,
            seed=cfg.seed,
            workers=0,
            **counts,
        )
    )

    begin("train-seg")
    seg_run = train_seg(
        TrainSegConfig(
            data=segmentation_pairs(data, out / "data" / "seg_pairs"),
            out=out / "runs" / "seg",
            size=cfg.size,
            epochs=cfg.seg_epochs,
            batch_size=16,
            learning_rate=3e-3,
            width=cfg.seg_width,
            decoder_channels=tuple(cfg.seg_decoder_channels),
            encoder_weights="none",
            seed=cfg.seed,
            device=cfg.device,
        ),
        progress,
    )

    begin("optimize-masks")
    masked = out / "masked"
    optimize_masks(OptimizeMasksConfig(data=data / "levels", out=masked, seg=str(seg_run), device=cfg.device))

    begin("train-gan")
    gan_config = TrainGanConfig(
        data=masked,
        out=out / "runs" / "gan",
        image_size=cfg.size,
        batch_size=4,
        epochs=cfg.gan_epochs,
        decay_epochs=cfg.gan_epochs // 2,
        base_channels=cfg.base_channels,
        residual_blocks=cfg.residual_blocks,
        discriminator_channels=cfg.base_channels,
        checkpoint_every=0,
        seed=cfg.seed,
        device=cfg.device,
    )
    gan_run = train_gan(with_preset(gan_config, "recommended"), gan_progress)

    begin("render")
    photos, drawn_masks = draw_photos(cfg, out / "photos")
    render_cfg = RenderConfig(
        gan=str(gan_run), seg=str(seg_run), levels=levels.RUSTY_NAMES, device=cfg.device
    )
    models = load_models(render_cfg, need_segmenter=True)
    renderer = make_renderer(render_cfg, models)
    images = [read_image(path) for path in photos]
    masks = renderer.masks(images)
    notes = list(models.notes)
    for index, mask in enumerate(masks):
        if not mask.any():
            masks[index] = drawn_masks[index]
            notes.append(f"the small segmenter found no car in {photos[index].name}; used its drawn mask")
    renderings = renderer.render(images, levels.RUSTY_NAMES, masks=masks)
    renders = []
    rows = []
    for path, rendering in zip(photos, renderings, strict=True):
        for name in levels.RUSTY_NAMES:
            renders.append(write_image(out / "render" / f"{path.stem}_{name}.png", rendering.outputs[name]))
        rows.append([rendering.image] + [rendering.outputs[name] for name in levels.RUSTY_NAMES])
    labels = [f"original ({levels.CLEAN.name})", *levels.RUSTY_NAMES]
    cell, cell_height = cell_size(rows[0][0], 320)
    grid = write_contact_sheet(
        out / GRID_NAME, rows, column_labels=labels, cell=cell, cell_height=cell_height
    )
    stages, names = timeline_stages(renderings[0])
    frames = timeline_frames(stages, cfg.timeline_frames, size=cfg.photo_size, labels=names)
    timeline = write_gif(out / TIMELINE_NAME, frames, 90)
    seconds[started[-1]] = time.perf_counter() - clock
    return DemoResult(out, grid, timeline, renders, seg_run, gan_run, seconds, notes)

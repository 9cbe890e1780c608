"""The data set: SynthConfig, the jobs (which car, level and label each file gets), drawing them
serially or in a process pool, and writing images, masks, manifest, config and preview.
"""

from __future__ import annotations

import contextlib
import csv
import io
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from corrode import levels
from corrode.config import require, save_config
from corrode.errors import FileError, UsageError, write_reason
from corrode.images import atomic_write_text, write_image, write_mask
from corrode.manifest import MANIFEST, MANIFEST_COLUMNS
from corrode.synth.scene import RUST_STYLES, draw_scene
from corrode.synth.textures import load_textures

PREVIEW = "preview.png"
CONFIG = "config.json"
# Everything `synth` writes; --overwrite removes exactly these, never anything else in OUT.
OUTPUTS = ("carvana", "levels", "levels_masks", MANIFEST, PREVIEW, CONFIG)
# Carvana photographs each car from 16 angles around it; ours are symmetric, so the default 8 views are
# one side's angles plus their mirror images. These are (view name, yaw in degrees, mirrored), in order.
CARVANA_VIEWS: tuple[tuple[str, float, bool], ...] = (
    ("side", 0.0, False),
    ("front-quarter", 30.0, False),
    ("rear-quarter", -30.0, False),
    ("front-quarter", 45.0, False),
    ("side", 0.0, True),
    ("front-quarter", 30.0, True),
    ("rear-quarter", -30.0, True),
    ("rear-quarter", -45.0, True),
    ("front-quarter", 15.0, False),
    ("rear-quarter", -15.0, False),
    ("front-quarter", 15.0, True),
    ("rear-quarter", -15.0, True),
    ("front-quarter", 40.0, True),
    ("rear-quarter", -40.0, True),
    ("front-quarter", 22.0, False),
    ("rear-quarter", -22.0, True),
)
PREVIEW_PER_LEVEL = 8
# Seed streams: each image's generator is derived from (seed, stream, index) so that it does not depend
# on how many other images are drawn or in which process.
_LEVEL_STREAM, _CARVANA_STREAM, _NOISE_STREAM, _ORDER_STREAM = 1, 2, 3, 4
# Below this many images a process pool costs more than it saves.
_POOL_MINIMUM = 120
# Images per task sent to a pool worker.
_CHUNK = 8


@dataclass(frozen=True)
class SynthConfig:
    out: Path
    none: int = 300
    mild: int = 65
    moderate: int = 97
    severe: int = 73
    # 20 cars x 8 views = 160 pairs: enough variety to train the demo segmenter, a few seconds to draw.
    carvana_cars: int = 20
    carvana_views: int = 8
    size: int = 256
    label_noise: float = 0.0
    seed: int = 0
    workers: int = 2
    overwrite: bool = False
    # How the rust looks (corrode.synth.RUST_STYLES); where it is and how much is the same in both.
    rust_style: str = "photo"

    def __post_init__(self) -> None:
        for name in (*levels.NAMES, "carvana_cars"):
            require(getattr(self, name) >= 0, f"{name} must be >= 0, got {getattr(self, name)}")
        require(
            1 <= self.carvana_views <= len(CARVANA_VIEWS),
            f"carvana_views must be 1..{len(CARVANA_VIEWS)}, got {self.carvana_views}",
        )
        require(32 <= self.size <= 2048, f"size must be 32..2048 pixels, got {self.size}")
        require(
            0.0 <= self.label_noise <= 1.0, f"label_noise must be a fraction 0..1, got {self.label_noise}"
        )
        require(self.workers >= 0, f"workers must be >= 0, got {self.workers}")
        require(self.seed >= 0, f"seed must be >= 0, got {self.seed}")
        require(
            self.rust_style in RUST_STYLES,
            f"rust_style must be one of {', '.join(RUST_STYLES)}, got {self.rust_style!r}",
        )

    @property
    def counts(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in levels.NAMES}

    @property
    def total(self) -> int:
        return sum(self.counts.values()) + self.carvana_cars * self.carvana_views


@dataclass(frozen=True)
class _Job:
    index: int
    set: str  # "carvana" or "levels"
    stem: str
    true_level: str
    label: str
    seed: tuple[int, ...]
    car_seed: int | None = None
    car_id: str = ""
    view: str | None = None
    yaw: float | None = None
    flip: bool | None = None
    keep_image: bool = False


def assign_labels(true_levels: list[str], noise: float, seed: int) -> list[str]:
    """Given labels: `round(noise * n)` images, chosen at random, moved to a neighbouring level."""
    rng = np.random.default_rng([seed, _NOISE_STREAM])
    labels = list(true_levels)
    moved = int(round(noise * len(labels)))
    for i in rng.permutation(len(labels))[:moved]:
        index = levels.get(labels[i]).index
        neighbours = [j for j in (index - 1, index + 1) if 0 <= j < len(levels.LEVELS)]
        labels[i] = levels.by_index(int(rng.choice(neighbours))).name
    return labels


def _jobs(cfg: SynthConfig) -> list[_Job]:
    jobs: list[_Job] = []
    order = np.random.default_rng([cfg.seed, _ORDER_STREAM])
    # Shuffled so that a file's number says nothing about its level.
    true_levels = [name for name, count in cfg.counts.items() for _ in range(count)]
    true_levels = [true_levels[i] for i in order.permutation(len(true_levels))]
    labels = assign_labels(true_levels, cfg.label_noise, cfg.seed)
    previewed = dict.fromkeys(levels.NAMES, 0)
    for i, (true_level, label) in enumerate(zip(true_levels, labels, strict=True)):
        keep = previewed[true_level] < PREVIEW_PER_LEVEL
        previewed[true_level] += keep
        jobs.append(
            _Job(
                len(jobs),
                "levels",
                f"synth_{i:05d}",
                true_level,
                label,
                (cfg.seed, _LEVEL_STREAM, i),
                car_id=f"L{i:05d}",
                keep_image=keep,
            )
        )
    for car in range(cfg.carvana_cars):
        car_seed = int(np.random.default_rng([cfg.seed, _CARVANA_STREAM, car]).integers(2**62))
        car_id = f"{car_seed & 0xFFFFFFFFFFFF:012x}"
        for view in range(cfg.carvana_views):
            name, yaw, flip = CARVANA_VIEWS[view]
            jobs.append(
                _Job(
                    len(jobs),
                    "carvana",
                    f"{car_id}_{view + 1:02d}",
                    levels.CLEAN.name,
                    levels.CLEAN.name,
                    (cfg.seed, _CARVANA_STREAM, car, view),
                    car_seed,
                    car_id,
                    name,
                    yaw,
                    flip,
                    keep_image=car < PREVIEW_PER_LEVEL and view == 1,
                )
            )
    return jobs


def _paths(job: _Job) -> tuple[str, str]:
    if job.set == "carvana":
        return f"carvana/train/{job.stem}.jpg", f"carvana/train_masks/{job.stem}_mask.gif"
    return f"levels/{job.label}/{job.stem}.png", f"levels_masks/{job.label}/{job.stem}.png"


class _WriteFailure(Exception):
    """A write that failed (disk full, read-only, ...); plain args so that it crosses a process pool."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(path, reason)
        self.path, self.reason = path, reason


_Result = tuple[int, dict[str, str], "np.ndarray | None"]


def _draw_and_write(job: _Job, out: Path, size: int, rust_style: str) -> _Result:
    from corrode.synth.backgrounds import STUDIO

    rng = np.random.default_rng(list(job.seed))
    background = STUDIO if job.set == "carvana" else None
    scene = draw_scene(
        rng,
        size,
        job.true_level,
        view=job.view,
        yaw=job.yaw,
        flip=job.flip,
        background=background,
        car_seed=job.car_seed,
        rust_style=rust_style,
    )
    file, mask = _paths(job)
    target = out / file
    try:
        write_image(target, scene.image, quality=95)
        target = out / mask
        write_mask(target, scene.mask)
    except BaseException as exc:
        # Half a pair is no use: take back what was written of it (each write itself is atomic).
        for path in (out / file, out / mask):
            path.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise _WriteFailure(str(target), f"cannot write: {write_reason(exc)}") from exc
        raise
    row = {
        "file": file,
        "mask": mask,
        "set": job.set,
        "true_level": job.true_level,
        "label": job.label,
        "rust_fraction": f"{scene.rust_fraction:.4f}",
        "car_id": job.car_id,
        "body": scene.body,
        "colour": scene.colour,
        "view": scene.view,
        "background": scene.background_kind,
    }
    return job.index, row, (scene.image if job.keep_image else None)


def _worker_init() -> None:
    import cv2

    cv2.setNumThreads(1)  # the pool is the parallelism; OpenCV threads would only fight over the cores


def _run_chunk(
    args: tuple[list[_Job], Path, int, str],
) -> tuple[list[_Result], _WriteFailure | None, bool]:
    """Draw a chunk in a pool worker: (finished results, the write that failed, interrupted).

    A failure or Ctrl-C stops the chunk but still returns what it finished, so the manifest can list
    every file that was written.
    """
    jobs, out, size, rust_style = args
    results: list[_Result] = []
    for job in jobs:
        try:
            results.append(_draw_and_write(job, out, size, rust_style))
        except _WriteFailure as failure:
            return results, failure, False
        except KeyboardInterrupt:
            return results, None, True
    return results, None, False


def _prepare(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise UsageError(f"{out}: folder is not empty (use --overwrite to replace a previous synth set)")
        for name in OUTPUTS:
            target = out / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    out.mkdir(parents=True, exist_ok=True)


def synth(cfg: SynthConfig, progress: Callable[[int, int], None] | None = None) -> Path:
    """Draw and write the whole set under `cfg.out`; `progress(done, total)` after each image.

    Large sets are drawn by a pool of `cfg.workers` processes (started with forkserver), so a script
    that calls this needs the usual `if __name__ == "__main__":` guard.

    A write that fails (a full disk) raises FileError naming the file; Ctrl-C raises KeyboardInterrupt.
    Either way every finished image and mask is kept, `manifest.csv` lists exactly those (if it can
    still be written), and no partial or temporary file is left.
    """
    out = Path(cfg.out)
    if cfg.rust_style == "photo":
        load_textures()  # here, so that a broken install is one clear error before any worker starts
    _prepare(out, cfg.overwrite)
    jobs = _jobs(cfg)
    results: dict[int, _Result] = {}
    failure: _WriteFailure | None = None
    try:
        if cfg.workers <= 1 or len(jobs) < _POOL_MINIMUM:
            failure = _run_serial(jobs, cfg, out, results, progress)
        else:
            failure = _run_pool(jobs, cfg, out, results, progress)
    except BaseException:  # Ctrl-C, or a worker's error
        _keep_finished(out, jobs, results)
        raise
    if failure is not None:
        _keep_finished(out, jobs, results)
        raise FileError(failure.path, failure.reason)
    rows = [results[index][1] for index in sorted(results)]
    kept = {index: image for index, _, image in results.values() if image is not None}
    target = out / MANIFEST
    try:
        _write_manifest(target, rows)
        target = out / CONFIG
        save_config(cfg, target)
        if kept:
            target = out / PREVIEW
            _write_preview(target, jobs, kept)
    except OSError as exc:
        raise FileError(target, f"cannot write: {write_reason(exc)}") from exc
    return out


def _run_serial(
    jobs: list[_Job],
    cfg: SynthConfig,
    out: Path,
    results: dict[int, _Result],
    progress: Callable[[int, int], None] | None,
) -> _WriteFailure | None:
    for job in jobs:
        try:
            result = _draw_and_write(job, out, cfg.size, cfg.rust_style)
        except _WriteFailure as failure:
            return failure
        results[result[0]] = result
        if progress is not None:
            progress(len(results), len(jobs))
    return None


def _run_pool(
    jobs: list[_Job],
    cfg: SynthConfig,
    out: Path,
    results: dict[int, _Result],
    progress: Callable[[int, int], None] | None,
) -> _WriteFailure | None:
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    failure: _WriteFailure | None = None
    pool = ProcessPoolExecutor(
        cfg.workers, mp_context=multiprocessing.get_context("forkserver"), initializer=_worker_init
    )
    chunks = [jobs[i : i + _CHUNK] for i in range(0, len(jobs), _CHUNK)]
    pending = {pool.submit(_run_chunk, (chunk, out, cfg.size, cfg.rust_style)) for chunk in chunks}

    error: BaseException | None = None

    def collect(done: set) -> None:
        nonlocal failure, error
        for future in done:
            if future.cancelled():
                continue
            if future.exception() is not None:
                error = error or future.exception()
                continue
            finished, failed, _ = future.result()
            for result in finished:
                results[result[0]] = result
            failure = failure or failed

    try:
        while pending and failure is None and error is None:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            collect(done)
            if progress is not None:
                progress(len(results), len(jobs))
    except BaseException:
        # Ctrl-C: let the chunks in flight finish (or stop) and keep what they wrote.
        for future in pending:
            future.cancel()
        collect(wait(pending)[0])
        pool.shutdown(cancel_futures=True)
        raise
    for future in pending:
        future.cancel()
    collect(wait(pending)[0])
    pool.shutdown(cancel_futures=True)
    if error is not None:
        raise error  # a worker failed other than by a write (a bug): not to be mistaken for a finished set
    return failure


def _keep_finished(out: Path, jobs: list[_Job], results: dict[int, _Result]) -> None:
    """After a failure or Ctrl-C: a manifest of what was finished, if the disk still takes it.

    A pair whose result never reached this process (a worker stopped between writing and reporting)
    is not in the manifest, so it is removed: what is on disk is exactly what the manifest lists.
    """
    for job in jobs:
        if job.index not in results:
            for name in _paths(job):
                (out / name).unlink(missing_ok=True)
    if not results:
        return
    # If the disk is full this fails too: the one error line is about the write that failed first.
    with contextlib.suppress(OSError):
        _write_manifest(out / MANIFEST, [results[index][1] for index in sorted(results)])


def _write_manifest(path: Path, rows: list[dict[str, str]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=MANIFEST_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


def _write_preview(path: Path, jobs: list[_Job], kept: dict[int, np.ndarray]) -> None:
    from corrode.grids import write_contact_sheet

    rows, labels = [], []
    for name in levels.NAMES:
        images = [
            kept[j.index] for j in jobs if j.set == "levels" and j.true_level == name and j.index in kept
        ]
        if images:
            rows.append(images)
            labels.append(name)
    carvana = [kept[j.index] for j in jobs if j.set == "carvana" and j.index in kept]
    if carvana:
        rows.append(carvana)
        labels.append("carvana")
    write_contact_sheet(path, rows, row_labels=labels)

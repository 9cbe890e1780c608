"""Batch execution for render: read, find the car, generate, composite, write, one outcome per output."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np

from corrode.batch import Outcome, Summary
from corrode.errors import CorrodeError, FileError, UsageError
from corrode.images import read_image, read_mask
from corrode.render import models as model_loading
from corrode.render.config import GRID_TAG, RenderConfig
from corrode.render.files import sweep_leftovers, terminate_as_exception, write_output
from corrode.render.outputs import grid_image, timeline_frames, timeline_stages, write_gif
from corrode.render.plan import TIMELINE_TAG, Job, mask_for, plan
from corrode.renderer import NoCarError, Renderer, Rendering

if TYPE_CHECKING:
    from corrode.distributed import DistContext
    from corrode.render.models import Models


def make_renderer(cfg: RenderConfig, models: Models) -> Renderer:
    return Renderer(
        models.translator,
        models.segmenter,
        margin=cfg.margin,
        feather=cfg.feather,
        keep_detail=cfg.keep_detail,
        mask_resolution=cfg.mask_resolution,
        composite=cfg.composite,
        gan_size=cfg.gan_size,
        max_side=cfg.max_side,
        tile=cfg.tile,
    )


def render(
    cfg: RenderConfig,
    *,
    models: Models | None = None,
    stdin: TextIO | None = None,
    context: DistContext | None = None,
    on_outcome: Callable[[Outcome], Any] | None = None,
    on_note: Callable[[str], Any] | None = None,
    progress: Callable[[int, int], Any] | None = None,
) -> Summary:
    """Render every input of `cfg`; per-file problems become failed outcomes, the rest go on.

    `models` are loaded from `cfg` when not given (tests pass stand-ins). Under torchrun
    (`context`), this rank renders inputs `rank, rank + world, ...` only. `on_outcome` sees each
    outcome as it happens; `progress(done, total)` counts inputs. Outputs that exist are skipped
    (unless `cfg.overwrite`), so a rerun of a killed batch redoes only what was unfinished; a
    SIGTERM raises `corrode.render.files.Terminated` once the temporary file in progress is removed.
    """
    started = time.perf_counter()
    work = plan(cfg, stdin=stdin, context=context)
    summary = Summary(inputs=work.inputs)

    def emit(outcome: Outcome) -> None:
        summary.add(outcome)
        if on_outcome is not None:
            on_outcome(outcome)

    for outcome in work.known:
        emit(outcome)
    done = work.inputs - len(work.todo)
    if progress is not None:
        progress(done, work.inputs)
    if work.todo:
        # A killed run's temporary files (no live writer holds them) go before anything is redone.
        sweep_leftovers(path for job in work.todo for path in job.outputs.values())
        if models is None:
            models = model_loading.load_models(cfg, need_segmenter=cfg.mask is None)
            for line in models.notes:
                if on_note is not None:
                    on_note(line)
        renderer = make_renderer(cfg, models)
        batch_size = cfg.batch_size or model_loading.automatic_batch_size(cfg.device)
        with terminate_as_exception():
            for start in range(0, len(work.todo), batch_size):
                chunk = work.todo[start : start + batch_size]
                _render_chunk(cfg, renderer, chunk, work.single_input, emit)
                done += len(chunk)
                if progress is not None:
                    progress(done, work.inputs)
    summary.seconds = time.perf_counter() - started
    return summary


def _failure(job: Job, exc: Exception) -> Outcome:
    message = str(exc) if isinstance(exc, FileError) else f"{job.path}: {exc}"
    return Outcome(job.path, None, None, "failed", message)


def _find_masks(renderer: Renderer, images: list[np.ndarray]) -> list[np.ndarray | Exception]:
    if renderer.segmenter is None:
        raise UsageError("no segmentation model and no --mask: cannot find the car")
    try:
        return list(renderer.masks(images))
    except CorrodeError:
        raise
    except Exception:
        # One bad photo must not sink the batch: retry one by one to pin the failure down.
        found: list[np.ndarray | Exception] = []
        for image in images:
            try:
                found.extend(renderer.masks([image]))
            except Exception as exc:  # noqa: BLE001 - reported per file
                found.append(exc)
        return found


def _render_chunk(
    cfg: RenderConfig,
    renderer: Renderer,
    chunk: list[Job],
    single_input: bool,
    emit: Callable[[Outcome], Any],
) -> None:
    started = time.perf_counter()
    ready: list[tuple[Job, np.ndarray, np.ndarray | None]] = []
    for job in chunk:
        try:
            image = read_image(job.path)
            mask = read_mask(mask_for(cfg, job.path, single_input)) if cfg.mask is not None else None
            ready.append((job, image, mask))
        except (FileError, OSError, MemoryError) as exc:
            emit(_failure(job, exc))
    if not ready:
        return
    need_masks = [i for i, (_, _, mask) in enumerate(ready) if mask is None]
    masks: list[np.ndarray | Exception | None] = [mask for _, _, mask in ready]
    if need_masks:
        found = _find_masks(renderer, [ready[i][1] for i in need_masks])
        for i, value in zip(need_masks, found, strict=True):
            masks[i] = value
    prepared: list[tuple[Job, Rendering]] = []
    for (job, image, _), mask in zip(ready, masks, strict=True):
        if isinstance(mask, Exception):
            emit(_failure(job, mask))
            continue
        assert mask is not None
        try:
            prepared.append((job, renderer.prepare(image, mask)))
        except ValueError as exc:
            emit(_failure(job, NoCarError(job.path, str(exc))))
    renderer.finish([r for _, r in prepared], cfg.level_names)
    per_photo = (time.perf_counter() - started) / max(1, len(ready))
    for job, rendering in prepared:
        _write_outputs(cfg, job, rendering, per_photo, emit)


def _write_outputs(
    cfg: RenderConfig, job: Job, rendering: Rendering, seconds: float, emit: Callable[[Outcome], Any]
) -> None:
    for tag, path in job.outputs.items():
        try:
            if tag == GRID_TAG:
                write_output(path, grid_image(rendering, cfg.level_names), quality=cfg.quality)
            elif tag == TIMELINE_TAG:
                stages, labels = timeline_stages(rendering)
                frames = timeline_frames(stages, cfg.timeline_frames, size=cfg.timeline_size, labels=labels)
                write_gif(path, frames, cfg.timeline_ms)
            else:
                write_output(path, rendering.outputs[tag], quality=cfg.quality)
            emit(Outcome(job.path, path, tag, "written", seconds=seconds))
        except (FileError, OSError, ValueError) as exc:
            emit(Outcome(job.path, path, tag, "failed", f"{path}: cannot write ({exc})"))

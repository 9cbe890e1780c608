"""Batch planning for render: which inputs, which output files, what is already done. No model, no
pixels: `plan(cfg)` only looks at paths, so a rerun knows what is left before loading anything."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from corrode import levels
from corrode.batch import Outcome, collect_inputs, output_path, previous_outputs
from corrode.errors import UsageError
from corrode.images import ImageError, resolve_safely
from corrode.render.config import GRID_TAG, RenderConfig

if TYPE_CHECKING:
    from corrode.distributed import DistContext

TIMELINE_TAG = "timeline"


@dataclass
class Job:
    """One input photo and the outputs still to write for it (tag -> path)."""

    index: int
    path: Path
    outputs: dict[str, Path]


@dataclass
class Plan:
    """The jobs to run, and the outcomes known before running anything (skips, clashes, empty folders)."""

    inputs: int
    todo: list[Job] = field(default_factory=list)
    known: list[Outcome] = field(default_factory=list)
    single_input: bool = False


def mask_for(cfg: RenderConfig, path: Path, single: bool) -> Path:
    """The mask file of `path` under `--mask` (a file for one input, or a folder of `<stem>[_mask].*`)."""
    assert cfg.mask is not None
    if cfg.mask.is_file():
        if not single:
            raise UsageError(f"--mask {cfg.mask}: one mask file fits one input; give a folder of masks")
        return cfg.mask
    if cfg.mask.is_dir():
        for stem in (path.stem, f"{path.stem}_mask"):
            for candidate in sorted(cfg.mask.glob(f"{stem}.*")):
                if candidate.is_file():
                    return candidate
        raise ImageError(path, f"no mask named {path.stem}.* or {path.stem}_mask.* in {cfg.mask}")
    raise UsageError(f"--mask {cfg.mask}: no such file or folder")


def plan_outputs(cfg: RenderConfig, path: Path, single_input: bool) -> dict[str, Path]:
    """Tag (level name or "grid") -> output path for one input."""
    tags = list(cfg.level_names) + ([GRID_TAG] if cfg.grid else [])
    single = single_input and len(tags) == 1
    return {
        tag: output_path(path, tag, out_dir=cfg.out_dir, out=cfg.out, single=single, suffix=cfg.suffix)
        for tag in tags
    }


def _same_dir(path: Path, cfg: RenderConfig) -> bool:
    return cfg.out_dir is not None and path.parent.resolve() == cfg.out_dir.resolve()


def plan(cfg: RenderConfig, *, stdin: TextIO | None = None, context: DistContext | None = None) -> Plan:
    """What `render(cfg)` has to do: one Job per input with the outputs not yet there."""
    # A folder with no images stays in the inputs as itself (corrode.batch): reading it fails, named.
    inputs = collect_inputs(
        cfg.inputs, recursive=cfg.recursive, stdin=stdin if stdin is not None else sys.stdin
    )
    tags = list(levels.RUSTY_NAMES) + [GRID_TAG]
    if cfg.out is None:
        stale = previous_outputs(inputs, tags)
        inputs = [p for p in inputs if p not in stale or (cfg.out_dir is not None and not _same_dir(p, cfg))]
    if (cfg.out is not None or cfg.timeline is not None) and len(inputs) != 1:
        what = "--out" if cfg.out is not None else "--timeline"
        raise UsageError(f"{what} takes exactly one input photo, got {len(inputs)}; use --out-dir for many")
    if cfg.timeline is not None and set(cfg.level_names) != set(levels.RUSTY_NAMES):
        raise UsageError("--timeline shows every level: use it with --level all")
    protected = {resolve_safely(p) for p in inputs}
    single_input = len(inputs) == 1
    jobs = [Job(i, p, plan_outputs(cfg, p, single_input)) for i, p in enumerate(inputs)]
    if context is not None:
        from corrode.distributed import shard

        jobs = shard(jobs, context)
    result = Plan(inputs=len(jobs), single_input=single_input)
    for job in jobs:
        clash = [p for p in job.outputs.values() if resolve_safely(p) in protected]
        if clash:
            message = f"{job.path}: output {clash[0]} would overwrite an input"
            result.known.append(Outcome(job.path, clash[0], None, "failed", message))
            continue
        pending = {t: p for t, p in job.outputs.items() if cfg.overwrite or not p.exists()}
        if cfg.timeline is not None and (cfg.overwrite or not cfg.timeline.exists()):
            pending.setdefault(TIMELINE_TAG, cfg.timeline)
        for tag, path in job.outputs.items():
            if tag not in pending:
                result.known.append(Outcome(job.path, path, tag, "skipped"))
        if pending:
            result.todo.append(Job(job.index, job.path, pending))
        elif cfg.timeline is not None:
            result.known.append(Outcome(job.path, cfg.timeline, TIMELINE_TAG, "skipped"))
    return result

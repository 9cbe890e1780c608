"""Batch plumbing for commands that turn many input images into output files (`render`).

Inputs are files, folders (optionally recursive), glob patterns and `-` (one path per line on
stdin). Outputs are named `<stem>_<tag>.<ext>`; an input is never overwritten, an existing output
is skipped unless asked to overwrite (so a rerun resumes), and each outcome is one record.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from corrode.errors import UsageError
from corrode.images import IMAGE_SUFFIXES, list_images

STDIN = "-"
# Suffixes images.write_image can write; any other input suffix renders to PNG.
WRITABLE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})


def read_path_list(stream: TextIO) -> list[str]:
    """Paths from a stream, one per line; blank lines and `#` comments are ignored."""
    paths = []
    for line in stream:
        text = line.strip()
        if text and not text.startswith("#"):
            paths.append(text)
    return paths


def collect_inputs(
    inputs: Sequence[str | Path], *, recursive: bool = False, stdin: TextIO | None = None
) -> list[Path]:
    """Expand files, folders, globs and `-` into a sorted, de-duplicated list of paths.

    A path read from stdin is kept whatever it is (reading it later says what is wrong with it), as
    a file named on the command line is; a missing one becomes a per-file error, not a usage error,
    so that one stale line in a long list does not stop the batch. A folder that holds no images
    is kept as itself, so that reading it fails with that reason.
    """
    expanded: list[str | Path] = []
    from_stdin: list[Path] = []
    for item in inputs:
        if str(item) == STDIN:
            if stdin is None:
                raise UsageError("'-' reads paths from standard input, but there is none")
            from_stdin.extend(Path(p) for p in read_path_list(stdin))
        else:
            expanded.append(item)
    found: dict[Path, None] = {}
    for item in expanded:
        found.update(dict.fromkeys(_expand(item, recursive)))
    for path in from_stdin:
        found.update(dict.fromkeys(_expand(path, recursive) if path.is_dir() else [path]))
    if not found:
        raise UsageError("no input images: give files, folders, glob patterns or '-' for stdin")
    return sorted(found)


def _expand(item: str | Path, recursive: bool) -> list[Path]:
    images = list_images([item], recursive=recursive)
    # A folder with nothing to read is a failed input, said once, not a silent no-op in a batch.
    return images or ([Path(item)] if Path(item).is_dir() else [])


def output_suffix(source: Path, suffix: str | None = None) -> str:
    """The output's suffix: the one asked for, else the input's own when writable, else `.png`."""
    if suffix:
        suffix = suffix if suffix.startswith(".") else f".{suffix}"
        if suffix.lower() not in WRITABLE_SUFFIXES:
            raise UsageError(
                f"cannot write {suffix!r} files: use one of {', '.join(sorted(WRITABLE_SUFFIXES))}"
            )
        return suffix
    own = source.suffix.lower()
    return source.suffix if own in WRITABLE_SUFFIXES else ".png"


def output_path(
    source: Path,
    tag: str,
    *,
    out_dir: Path | None = None,
    out: Path | None = None,
    single: bool = True,
    suffix: str | None = None,
) -> Path:
    """Where the `tag` output of `source` goes.

    `out` is one file for one input: used as is when it is the only output (`single`), else its
    stem gets `_<tag>`. Otherwise `<out_dir or source's folder>/<stem>_<tag><suffix>`.
    """
    if out is not None:
        if single:
            return out
        return out.with_name(f"{out.stem}_{tag}{out.suffix or output_suffix(source, suffix)}")
    folder = out_dir if out_dir is not None else source.parent
    return folder / f"{source.stem}_{tag}{output_suffix(source, suffix)}"


def previous_outputs(paths: Iterable[Path], tags: Iterable[str]) -> set[Path]:
    """Files among `paths` that look like outputs of another of `paths` (`<stem>_<tag>.*` beside
    `<stem>.*`): a rerun over a folder that holds its own outputs must not render them again."""
    paths = list(paths)
    stems = {(p.parent, p.stem) for p in paths}
    found = set()
    for path in paths:
        for tag in tags:
            ending = f"_{tag}"
            if path.stem.endswith(ending) and (path.parent, path.stem[: -len(ending)]) in stems:
                found.add(path)
    return found


def is_image_suffix(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


@dataclass
class Outcome:
    """One output of a batch (or one failed input): what `--json` prints, one object per line."""

    input: Path
    output: Path | None
    level: str | None
    status: str  # "written", "skipped" or "failed"
    error: str | None = None
    seconds: float | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "input": str(self.input),
            "output": str(self.output) if self.output is not None else None,
            "level": self.level,
            "status": self.status,
            "error": self.error,
            "seconds": round(self.seconds, 4) if self.seconds is not None else None,
        }


@dataclass
class Summary:
    """Counts over a batch; `failed_inputs` lists each input that could not be rendered."""

    inputs: int = 0
    written: int = 0
    skipped: int = 0
    failed_inputs: list[Path] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failed(self) -> int:
        return len(self.failed_inputs)

    def add(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)
        if outcome.status == "written":
            self.written += 1
        elif outcome.status == "skipped":
            self.skipped += 1
        elif outcome.status == "failed" and outcome.input not in self.failed_inputs:
            self.failed_inputs.append(outcome.input)

    def line(self) -> str:
        parts = [f"{self.written} written"]
        if self.skipped:
            parts.append(f"{self.skipped} skipped (already there; --overwrite to redo)")
        parts.append(f"{self.failed} failed")
        return f"{self.inputs} input(s): " + ", ".join(parts) + f" in {self.seconds:.1f} s"

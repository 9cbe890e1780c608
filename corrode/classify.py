"""`corrode classify`: the corrosion level of each photo, with the probability of every level.

`corrode.classification.Classifier` is the inference API (shared with `corrode evaluate`);
`classify(cfg)` is the batch work function: per photo read -> (segment the car and black out the
background, when a segmenter is given) -> resize to the model's size -> probabilities. A photo that
cannot be read gives one failed result and the rest go on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import numpy as np

from corrode.classification import Classifier, expected_level
from corrode.config import require
from corrode.errors import CorrodeError

if TYPE_CHECKING:
    from corrode.segment import Segments


# --- the batch command's work ------------------------------------------------------------------------


@dataclass(frozen=True)
class ClassifyConfig:
    inputs: tuple[str, ...] = ()
    model: str | None = None
    seg: str | None = None
    recursive: bool = False
    batch_size: int = 16
    mask_resolution: int = 512
    device: str = "auto"

    def __post_init__(self) -> None:
        require(self.batch_size >= 1, f"batch_size {self.batch_size} must be >= 1")
        require(self.mask_resolution >= 32, f"mask_resolution {self.mask_resolution} must be >= 32")


@dataclass
class Prediction:
    """One input's result: its level and probabilities, or the reason it failed."""

    input: Path
    level: str | None = None
    probabilities: dict[str, float] | None = None
    expected: float | None = None
    error: str | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None

    def as_dict(self) -> dict[str, object]:
        return {
            "input": str(self.input),
            "level": self.level,
            "probabilities": self.probabilities,
            "expected_level": None if self.expected is None else round(self.expected, 4),
            "status": "failed" if self.failed else "classified",
            "error": self.error,
        }

    def line(self) -> str:
        """`path<TAB>level<TAB>none=0.012 mild=...` (tab-separated for `cut`)."""
        assert self.probabilities is not None
        values = " ".join(f"{name}={value:.3f}" for name, value in self.probabilities.items())
        return f"{self.input}\t{self.level}\t{values}"


def _read(path: Path, segmenter: Segments | None, resolution: int) -> np.ndarray:
    from corrode.images import ImageError, read_image

    image = read_image(path, background=(0, 0, 0))
    if segmenter is None:
        return image
    from corrode.segment import segment_masks

    (mask,) = segment_masks(segmenter, [image], resolution)
    if not mask.any():
        raise ImageError(path, "no car found by the segmentation model")
    return image * mask[:, :, None].astype(np.uint8)


def classify(
    cfg: ClassifyConfig,
    *,
    classifier: Classifier | None = None,
    segmenter: Segments | None = None,
    stdin: TextIO | None = None,
    on_result: Callable[[Prediction], None] | None = None,
) -> list[Prediction]:
    """Classify every input (files, folders, globs, `-` for a list on stdin); one Prediction each.

    Models are loaded from `cfg` unless given. `on_result` is called as each result is known.
    """
    from corrode.batch import collect_inputs

    paths = collect_inputs(cfg.inputs, recursive=cfg.recursive, stdin=stdin)
    if classifier is None:
        classifier = Classifier.load(cfg.model, cfg.device)
    if segmenter is None and cfg.seg is not None:
        from corrode.locate import find_model
        from corrode.segment import Segmenter

        segmenter = Segmenter.load(find_model(cfg.seg, "seg"), device=cfg.device)
    results: list[Prediction] = []

    def report(prediction: Prediction) -> None:
        results.append(prediction)
        if on_result is not None:
            on_result(prediction)

    for start in range(0, len(paths), cfg.batch_size):
        chunk: list[tuple[Path, np.ndarray]] = []
        for path in paths[start : start + cfg.batch_size]:
            try:
                chunk.append((path, _read(path, segmenter, cfg.mask_resolution)))
            except CorrodeError as exc:
                report(Prediction(path, error=str(getattr(exc, "reason", exc))))
        if not chunk:
            continue
        probabilities = classifier.predict([image for _, image in chunk], batch_size=cfg.batch_size)
        expected = expected_level(probabilities)
        for (path, _), row, mean in zip(chunk, probabilities.tolist(), expected.tolist(), strict=True):
            best = int(np.argmax(row))
            report(
                Prediction(
                    path,
                    level=classifier.names[best],
                    probabilities={
                        name: round(float(p), 4) for name, p in zip(classifier.names, row, strict=True)
                    },
                    expected=float(mean),
                )
            )
    order = {path: index for index, path in enumerate(paths)}
    results.sort(key=lambda prediction: order.get(prediction.input, len(order)))
    return results

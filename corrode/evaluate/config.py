"""`corrode evaluate`'s configuration and the names of the files it writes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from corrode.config import require

REPORT_JSON = "report.json"
REPORT_MARKDOWN = "report.md"
REPORT_FIGURE = "report.png"
FEATURE_CHOICES = ("classifier", "inception")


@dataclass(frozen=True)
class EvaluateConfig:
    """`sources`: a folder of held-out clean cars (default: DATA's none images, which the GAN may have
    trained on - the report says so). `limit` caps the clean cars translated, `real_limit` the real
    cars per level. `render_checks` full-size composites are checked for changes outside the car."""

    gan: str | None = None
    data: Path | None = None
    classifier: str | None = None
    masks: Path | None = None
    sources: Path | None = None
    out: Path | None = None
    limit: int = 64
    real_limit: int = 256
    render_checks: int = 8
    features: str = "classifier"
    inception_weights: Path | None = None
    samples: int = 4
    batch_size: int = 16
    device: str = "auto"
    precision: str = "auto"

    def __post_init__(self) -> None:
        require(self.limit >= 1, f"limit {self.limit} must be >= 1")
        require(self.real_limit >= 2, f"real_limit {self.real_limit} must be >= 2")
        require(self.render_checks >= 0, f"render_checks {self.render_checks} must be >= 0")
        require(
            self.features in FEATURE_CHOICES,
            f"features {self.features!r}: one of {', '.join(FEATURE_CHOICES)}",
        )
        require(self.samples >= 1, f"samples {self.samples} must be >= 1")
        require(self.batch_size >= 1, f"batch_size {self.batch_size} must be >= 1")

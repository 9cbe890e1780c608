"""`corrode evaluate`: numbers that say how good a trained GAN's translations are, level by level.

Clean (none) cars are translated to every level the GAN makes; per level the report gives
- level accuracy and mean predicted level of the generated cars, judged by a classifier trained on
  real images (never on generated ones);
- FID and KID between generated and real cars of that level (torchmetrics) in a stated feature space:
  the classifier's penultimate layer by default (works offline), Inception-v3 when the user has
  torch-fidelity and its weights file;
- cycle reconstruction error, L1 and PSNR over the car's pixels, for none -> level -> none and for
  real level -> none -> level;
- colour kept: mean CIEDE2000 between input and output over car pixels that are not rust in the
  output (rust test: corrode.metrics, module doc), the paper's "bright blue cars change colour";
- pixels changed outside the car by the full-size composited render (corrode.renderer; must be 0);
- on `corrode synth` data, the rust coverage of the generated cars against the true coverage band of
  that level from the synth manifest.

Writes report.json, report.md and report.png (sample grid + per-level bars) into the output folder.
Cut along its jobs: `config`, `data` (which cars), `features` (FID/KID feature spaces), `measures`
(one function per measure group, and the cache), `report` (files), `run` (`evaluate`).
"""

from corrode.evaluate.config import (
    FEATURE_CHOICES,
    REPORT_FIGURE,
    REPORT_JSON,
    REPORT_MARKDOWN,
    EvaluateConfig,
)
from corrode.evaluate.data import CarSet, DataPlan, coverage_bands, plan_data, read_cars, spread
from corrode.evaluate.measures import EvaluationCache, RealCars, RealKey, cycle_error
from corrode.evaluate.report import Report, write_figure, write_report
from corrode.evaluate.run import evaluate

__all__ = [
    "FEATURE_CHOICES",
    "REPORT_FIGURE",
    "REPORT_JSON",
    "REPORT_MARKDOWN",
    "CarSet",
    "DataPlan",
    "EvaluateConfig",
    "EvaluationCache",
    "RealCars",
    "RealKey",
    "Report",
    "coverage_bands",
    "cycle_error",
    "evaluate",
    "plan_data",
    "read_cars",
    "spread",
    "write_figure",
    "write_report",
]

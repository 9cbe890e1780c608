"""What every trainer needs around its model, written once.

`open_run` opens a fresh run folder or resumes one under one rule (`RESUMABLE`); the `Run` it returns
writes weights, then metrics, then state (each atomically), turns SIGINT / SIGTERM into a request to
stop after the current step, logs metrics to CSV (and TensorBoard), and reports through one
`Reporter`. `train_seg`, `train_classifier` and `train_gan` hold only their model's part.
"""

from corrode.training.interrupt import Interrupted, StopSignals
from corrode.training.reporter import Reporter, as_reporter
from corrode.training.run import RESUMABLE, Run, open_run, seed_everything

__all__ = [
    "RESUMABLE",
    "Interrupted",
    "Reporter",
    "Run",
    "StopSignals",
    "as_reporter",
    "open_run",
    "seed_everything",
]

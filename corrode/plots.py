"""Figures written into run folders: loss and metric curves (matplotlib, Agg backend)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from corrode.images import atomic_path


def plot_panels(
    panels: Mapping[str, Mapping[str, tuple[Sequence[float], Sequence[float]]]],
    out: str | Path,
    *,
    xlabel: str = "step",
    columns: int = 2,
    title: str | None = None,
    smooth: int = 1,
) -> Path:
    """One subplot per panel title, one line per series `(xs, ys)`; saved atomically as PNG.

    `smooth` > 1 overlays a running mean of that window (GAN losses are noisy step to step).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.ticker import MaxNLocator

    names = list(panels)
    rows = max(1, (len(names) + columns - 1) // columns)
    cols = min(columns, max(1, len(names)))
    figure, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.0 * rows), squeeze=False)
    for axis in axes.flat[len(names) :]:
        axis.set_visible(False)
    for axis, name in zip(axes.flat, names, strict=False):
        for label, (xs, ys) in panels[name].items():
            xs_arr, ys_arr = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
            if smooth > 1 and len(ys_arr) > smooth:
                (line,) = axis.plot(xs_arr, ys_arr, alpha=0.25, linewidth=0.8)
                kernel = np.ones(smooth) / smooth
                smoothed = np.convolve(ys_arr, kernel, mode="valid")
                axis.plot(xs_arr[smooth - 1 :], smoothed, color=line.get_color(), label=label)
            else:
                axis.plot(xs_arr, ys_arr, label=label, marker="o" if len(xs_arr) < 30 else None)
        axis.set_title(name, fontsize=10)
        axis.set_xlabel(xlabel)
        if all(float(x).is_integer() for xs, _ in panels[name].values() for x in xs):
            # Epochs and steps: no ticks at 1.5 or 2.5.
            axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.grid(alpha=0.3)
        if len(panels[name]) > 1:
            axis.legend(fontsize=8)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    out = Path(out)
    with atomic_path(out) as temp:
        figure.savefig(temp, format="png", dpi=100)
    plt.close(figure)
    return out

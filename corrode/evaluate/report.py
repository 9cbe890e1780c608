"""The evaluation report: what was measured (JSON-ready), its Markdown table, and its figure."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from corrode.evaluate.config import REPORT_FIGURE, REPORT_JSON, REPORT_MARKDOWN


@dataclass
class Report:
    """Everything measured; `levels` maps each level name to its measures (JSON-ready values)."""

    gan: str
    data: str
    classifier: str | None
    features: str
    image_size: int
    sources: dict[str, Any]
    levels: dict[str, dict[str, Any]] = field(default_factory=dict)
    classifier_on_real: dict[str, float | None] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # Files that could not be read ("path: reason"), each named once; the CLI then exits 1.
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0
    folder: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return _clean_json(
            {
                "gan": self.gan,
                "data": self.data,
                "classifier": self.classifier,
                "features": self.features,
                "image_size": self.image_size,
                "sources": self.sources,
                "levels": self.levels,
                "classifier_on_real": self.classifier_on_real,
                "notes": self.notes,
                "skipped": self.skipped,
                "seconds": round(self.seconds, 2),
                "folder": self.folder,
            }
        )

    def markdown(self) -> str:
        lines = [
            "# GAN evaluation",
            "",
            f"- GAN: `{self.gan}`",
            f"- data: `{self.data}`",
            f"- classifier: `{self.classifier}`" if self.classifier else "- classifier: none",
            f"- FID/KID features: {self.features}",
            f"- clean cars translated: {self.sources.get('count')} from `{self.sources.get('folder')}`"
            + ("" if self.sources.get("held_out") else " (may include the GAN's training images)"),
            f"- image size: {self.image_size} px; measured in {self.seconds:.1f} s",
            "",
            "| level | accuracy | mean level | FID | KID | none->X->none L1 / PSNR | X->none->X L1 / PSNR "
            "| colour shift (dE00) | changed outside car | rust coverage (generated / true band) |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for name, values in self.levels.items():
            coverage = values.get("coverage")
            coverage_text = "-"
            if coverage:
                band = coverage.get("true_band")
                band_text = f"{band[0]:.2f}-{band[1]:.2f}" if band else "?"
                coverage_text = f"{_fmt(coverage.get('generated_mean'), 3)} / {band_text}"
            changed = values.get("changed_outside_car")
            lines.append(
                f"| {name} | {_fmt(values.get('accuracy'), 3)} | {_fmt(values.get('mean_level'), 2)} "
                f"| {_fmt(values.get('fid'), 2)} | {_fmt(values.get('kid'), 4)} "
                f"| {_fmt(values['cycle_clean']['l1'], 4)} / {_fmt(values['cycle_clean']['psnr'], 1)} "
                f"| {_fmt(values['cycle_level']['l1'], 4)} / {_fmt(values['cycle_level']['psnr'], 1)} "
                f"| {_fmt(values.get('colour_shift'), 2)} "
                f"| {'-' if changed is None else changed} | {coverage_text} |"
            )
        if self.classifier_on_real:
            lines += ["", "Classifier accuracy on the real cars of each level (its own reliability):", ""]
            lines += [f"- {name}: {_fmt(value, 3)}" for name, value in self.classifier_on_real.items()]
        lines += [
            "",
            "Colour shift: mean CIEDE2000 between input and output over car pixels that are not rust in the "
            "output (rust: hue 0-45 deg, saturation >= 0.3, value 0.08-0.9, and dE00 >= 10 from the input). "
            "Cycle errors are over car pixels, images in [0, 1].",
        ]
        if self.notes:
            lines += ["", "Notes:", ""] + [f"- {note}" for note in self.notes]
        return "\n".join(lines) + "\n"


def _fmt(value: Any, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


def _clean_json(value: Any) -> Any:
    """NaN and inf become None (JSON has neither)."""
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, dict):
        return {str(k): _clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean_json(v) for v in value]
    if isinstance(value, np.generic):
        return _clean_json(value.item())
    return value


def level_line(name: str, values: dict[str, Any]) -> str:
    parts = [f"{name}:"]
    if "accuracy" in values:
        parts.append(f"accuracy {values['accuracy']:.3f}, mean level {values['mean_level']:.2f}")
    if values.get("fid") is not None:
        parts.append(f"FID {values['fid']:.2f}, KID {values['kid']:.4f}")
    parts.append(f"colour shift {_fmt(values['colour_shift'], 2)} dE00")
    parts.append(f"cycle L1 {_fmt(values['cycle_clean']['l1'], 4)}")
    if values.get("coverage"):
        parts.append(f"rust coverage {_fmt(values['coverage']['generated_mean'], 3)}")
    if values.get("changed_outside_car") is not None:
        parts.append(f"{values['changed_outside_car']} px changed outside the car")
    return " ".join(parts[:1]) + " " + "; ".join(parts[1:])


def write_report(report: Report, out: Path, sources: np.ndarray, samples: dict[str, np.ndarray]) -> None:
    from corrode.images import atomic_write_text

    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / REPORT_JSON, json.dumps(report.as_dict(), indent=2) + "\n")
    atomic_write_text(out / REPORT_MARKDOWN, report.markdown())
    write_figure(report, out / REPORT_FIGURE, sources, samples)


def write_figure(report: Report, path: Path, sources: np.ndarray, samples: dict[str, np.ndarray]) -> Path:
    """Sample grid (clean input, then each level) over per-level bars of the main measures."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from corrode.grids import contact_sheet
    from corrode.images import atomic_path

    names = list(report.levels)
    rows = []
    for index in range(len(sources)):
        row = [np.clip(sources[index] * 255, 0, 255).astype(np.uint8)]
        row += [
            np.clip(samples[name][index] * 255, 0, 255).astype(np.uint8)
            for name in names
            if index < len(samples[name])
        ]
        rows.append(row)
    cell = max(96, report.image_size)
    sheet = contact_sheet(rows, column_labels=["input", *names], cell=cell) if rows else None

    panels: list[tuple[str, list[float | None], list[tuple[float, float] | None] | None]] = [
        ("level accuracy (classifier)", [report.levels[n].get("accuracy") for n in names], None),
        ("FID (" + report.features.split(" (")[0] + ")", [report.levels[n].get("fid") for n in names], None),
        ("colour shift, mean dE00", [report.levels[n].get("colour_shift") for n in names], None),
    ]
    if any(report.levels[n].get("coverage") for n in names):
        coverage = [report.levels[n].get("coverage") or {} for n in names]
        panels.append(
            (
                "rust coverage vs true band (line)",
                [c.get("generated_mean") for c in coverage],
                [tuple(c["true_band"]) if c.get("true_band") else None for c in coverage],
            )
        )
    else:
        panels.append(
            ("cycle L1 none->X->none", [report.levels[n]["cycle_clean"]["l1"] for n in names], None)
        )

    figure = plt.figure(figsize=(12, 8.5 if sheet is not None else 3.4))
    grid = figure.add_gridspec(
        2 if sheet is not None else 1, len(panels), height_ratios=[2.2, 1] if sheet is not None else [1]
    )
    if sheet is not None:
        top = figure.add_subplot(grid[0, :])
        top.imshow(sheet)
        top.set_axis_off()
        top.set_title("clean input and its translations", fontsize=10)
    colours = ["#c98a3c", "#a5552a", "#6b3219"]
    for column, (title, values, bands) in enumerate(panels):
        axis = figure.add_subplot(grid[-1, column])
        heights = [np.nan if v is None else float(v) for v in values]
        axis.bar(names, np.nan_to_num(heights), color=colours[: len(names)] if len(names) <= 3 else None)
        for x, value in enumerate(heights):
            height = 0.0 if np.isnan(value) else value
            label = "n/a" if np.isnan(value) else f"{value:.3g}"
            axis.text(x + 0.12, height, label, ha="left", va="bottom", fontsize=8)
        if bands:
            for x, band in enumerate(bands):
                if band is not None:
                    axis.plot([x, x], band, color="black", linewidth=3, alpha=0.6)
        axis.set_title(title, fontsize=9)
        axis.tick_params(labelsize=8)
        axis.grid(axis="y", alpha=0.3)
    figure.suptitle(f"GAN evaluation: {report.gan}", fontsize=11)
    figure.tight_layout()
    with atomic_path(path) as temp:
        figure.savefig(temp, format="png", dpi=90)
    plt.close(figure)
    return path

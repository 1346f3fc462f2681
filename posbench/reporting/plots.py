"""The report's figures, PNG through matplotlib's Agg canvas (imported only when drawing):

* ``acc_vs_length_<task>_<model>.png`` per row: the per-length metric (``acc``; ``ppl`` for
  language modelling; the chosen metric's key otherwise) by evaluation length, one line per label
  (mean over seeds, band min–max), the no-PE twins dashed, the training lengths shaded and chance
  dotted; for an image task ``acc_vs_size_<task>_<model>.png``, by image size;
* ``with_without_pe.png``: per row, each label's metric beside its twins' and with its encoding off.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from posbench import scales
from posbench.reporting.metric import Metric
from posbench.reporting.table import Grid, Row
from posbench.training.files import atomic


def file_name(name: str) -> str:
    """``name`` with every character outside ``[A-Za-z0-9._-]`` replaced by ``_``."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


def draw(grid: Grid, out: Path) -> list[str]:
    """Write the figures into ``out``; the names of those written (rows without runs get none)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    def save(fig: Figure, name: str) -> str:
        FigureCanvasAgg(fig)
        fig.tight_layout()
        atomic(out / name, lambda handle: fig.savefig(handle, format="png", dpi=100))
        return name

    rows = [row for row in grid.rows if grid.runs(row)]
    names = [save(_by_scale(grid, row, Figure(figsize=(7, 4.5))), file_name(f"acc_vs_{_axis(grid, row)}_{row.task}_{row.model}.png"))
             for row in rows if any(scales.scores(run.data) for run in grid.runs(row))]
    if rows:
        fig = Figure(figsize=(max(6.0, 1.3 * len(grid.labels) + 2), 3 * len(rows)))
        for ax, row in zip(fig.subplots(len(rows), 1, squeeze=False)[:, 0], rows):
            _bars(grid, row, ax)
        names.append(save(fig, "with_without_pe.png"))
    return names


def _axis(grid: Grid, row: Row) -> str:
    """``length`` or ``size``: what the row's runs were scored at."""
    return next((scales.axis_of(run.data) for run in grid.runs(row) if scales.scores(run.data)), "length")


def _by_scale(grid: Grid, row: Row, fig):
    runs, axis = grid.runs(row), _axis(grid, row)
    key = grid.metric.key
    if key == "acc" and any("ppl" in (run.data.get("metrics") or {}) for run in runs):
        key = "ppl"  # language modelling: perplexity by length, as in the single-run summary
    lengths = sorted({n for run in runs for n in scales.scores(run.data) or {}}, key=int)
    ax = fig.subplots()
    for label in grid.labels:
        points = [(int(length), grid.stats(row, label, Metric(key, axis, length))) for length in lengths]
        points = [(x, stats) for x, stats in points if stats.n]
        if points:
            xs = [x for x, _ in points]
            ax.plot(xs, [stats.mean for _, stats in points], marker="o", label=grid.shown[label])
            ax.fill_between(xs, [min(stats.values) for _, stats in points], [max(stats.values) for _, stats in points], alpha=0.2)
    twin = [(int(length), grid.twins(row, metric=Metric(key, axis, length)).mean) for length in lengths]
    twin = [(x, y) for x, y in twin if y is not None]
    if twin:
        ax.plot(*zip(*twin), linestyle="--", color="black", label="no-PE twin")
    train = next((run.train_lengths for run in runs if run.train_lengths), None)
    if train:
        shaded = (train[0] - 0.5, train[1] + 0.5) if train[0] == train[1] else train  # one size: a visible band
        ax.axvspan(*shaded, color="grey", alpha=0.15, label=f"training {axis}s")
    if key == "acc" and grid.chance(row) is not None:
        ax.axhline(grid.chance(row), linestyle=":", color="grey", label="chance")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set(xlabel=scales.words(axis), ylabel=key, title=f"{grid.name(row)}: {key} by {axis} (band: min–max over seeds)")
    _legend(ax)
    return fig


def _bars(grid: Grid, row: Row, ax) -> None:
    metric = grid.metric.with_pe
    labels = [label for label in grid.labels if grid.runs(row, label)]
    series = {
        "with PE": [grid.stats(row, label, metric).mean for label in labels],
        "no-PE twin": [grid.twins(row, label, metric).mean for label in labels],
    }
    if metric.source not in scales.AXES:
        series["PE off"] = [grid.stats(row, label, Metric(metric.key, "pe_off")).mean for label in labels]
    series = {name: values for name, values in series.items() if any(v is not None for v in values)}
    for i, (name, values) in enumerate(series.items()):
        width = 0.8 / len(series)
        xs = [x + (i - (len(series) - 1) / 2) * width for x in range(len(labels))]
        ax.bar(xs, [math.nan if v is None else v for v in values], width, label=name)
    ax.set_xticks(range(len(labels)), [grid.shown[label] for label in labels], rotation=20, ha="right", fontsize="small")
    ax.set(ylabel=metric.name, title=grid.name(row))
    _legend(ax)


def _legend(ax) -> None:
    if ax.get_legend_handles_labels()[0]:  # a row without the metric draws nothing to name
        ax.legend(fontsize="small")

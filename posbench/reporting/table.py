"""The numbers of a report: ``ok`` runs grouped by row (task, × model when several appear) and
label, mean ± std over seeds, the no-PE twins and Δ against them, chance, the ranking by mean
reciprocal rank, and their Markdown and CSV forms.

Each seed counts once per row and label: where a run was repeated, the latest (``provenance.started``,
then path order) counts and the others are listed as superseded.
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from dataclasses import dataclass

from posbench.reporting.collect import Run
from posbench.reporting.metric import Metric

CSV_COLUMNS = [
    "task", "model", "label", "metric", "mean", "std", "n", "twin_mean", "delta_vs_twin",
    "chance", "constant_ceiling", "values",
]


@dataclass(frozen=True, order=True)
class Row:
    """A line of the table: one task trained with one model family."""

    task: str
    model: str


@dataclass
class Stats:
    """The values of one cell, one per seed."""

    values: list[float]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.values) if self.values else None

    @property
    def std(self) -> float | None:
        """Sample standard deviation; None below two values."""
        return statistics.stdev(self.values) if self.n > 1 else None

    def cell(self, metric: Metric, sign: bool = False) -> str:
        """``0.912 ± 0.031 (n=3)``; ``0.912 (n=1)``; ``—`` without values."""
        if not self.values:
            return "—"
        spread = f" ± {metric.format(self.std)}" if self.std is not None else ""
        return f"{metric.format(self.mean, sign)}{spread} (n={self.n})"


class Grid:
    """The runs of a report arranged for ``metric``: rows, labels (columns) and cells."""

    def __init__(self, runs: list[Run], metric: Metric):
        self.metric = metric
        self.superseded: list[Run] = []
        self._all: dict[Row, list[Run]] = {}
        self._ok: dict[tuple[Row, str], dict] = {}
        for run in sorted(runs, key=_started):  # stable: path order among equals
            row = Row(str(run.data["task"]), str(run.data["model"]))
            self._all.setdefault(row, []).append(run)
            if run.status == "ok":
                by_seed = self._ok.setdefault((row, run.label), {})
                if run.seed in by_seed:
                    self.superseded.append(by_seed.pop(run.seed))
                by_seed[run.seed] = run
        self.rows = sorted(self._all)
        # none first, then in order of first appearance (path order)
        labels = list(dict.fromkeys(run.label for run in runs))
        # options every run shares (``max_steps=300`` in every label of a sweep) are said once
        options = [set(label.split(" ")[1:]) for label in labels]
        self.common = [word for word in labels[0].split(" ")[1:] if all(word in each for each in options)]
        self.shown = {label: " ".join(w for w in label.split(" ") if w not in self.common) for label in labels}
        self.labels = sorted(labels, key=lambda label: self.shown[label] != "none")
        self.with_model = len({row.model for row in self.rows}) > 1

    def name(self, row: Row) -> str:
        return f"{row.task} / {row.model}" if self.with_model else row.task

    def present(self, row: Row, label: str) -> bool:
        """Whether the row has any run (of any status) of ``label``."""
        return any(run.label == label for run in self._all[row])

    def runs(self, row: Row, label: str | None = None) -> list[Run]:
        """The ``ok`` runs of a cell (of the whole row without ``label``), one per seed."""
        labels = self.labels if label is None else [label]
        return [run for each in labels for run in self._ok.get((row, each), {}).values()]

    def stats(self, row: Row, label: str, metric: Metric | None = None) -> Stats:
        metric = metric or self.metric
        return Stats([v for v in (metric.of(run.data) for run in self.runs(row, label)) if v is not None])

    def twins(self, row: Row, label: str | None = None, metric: Metric | None = None) -> Stats:
        """The no-PE twins of a cell's (or a row's) runs, each distinct twin once."""
        metric = metric or self.metric
        values = {run.twin_id: metric.of(run.twin) for run in self._twinned(row, label)}
        return Stats([value for value in values.values() if value is not None])

    def delta(self, row: Row, label: str) -> Stats:
        """Each run's metric minus its own twin's."""
        pairs = [(self.metric.of(run.data), self.metric.of(run.twin)) for run in self._twinned(row, label)]
        return Stats([mine - twin for mine, twin in pairs if mine is not None and twin is not None])

    def _twinned(self, row: Row, label: str | None) -> list[Run]:
        """The ``ok`` runs whose no-PE twin is ``ok`` too."""
        return [run for run in self.runs(row, label) if (run.twin or {}).get("status") == "ok"]

    def chance(self, row: Row) -> float | None:
        return self._recorded(row, "chance")

    def ceiling(self, row: Row) -> float | None:
        """The best constant output: a bound for a NoPE *encoder* only (no bound for generating models)."""
        return self._recorded(row, "constant_ceiling") if row.model == "encoder" else None

    def _recorded(self, row: Row, key: str) -> float | None:
        """The first value of ``key`` a run of the row recorded (the same for all: a property of the task)."""
        return next((run.data[key] for run in self._all[row] if run.data.get(key) is not None), None)

    def ranking(self) -> list[tuple[str, float, int]]:
        """``(label, MRR, rows)``, best first: within each row the labels are ranked by their mean
        (ties share the better rank) and MRR is the mean of 1/rank over the rows a label appears in,
        as Kazemnejad et al. 2023 ("The Impact of Positional Encoding on Length Generalization in
        Transformers") rank encodings across tasks."""
        reciprocal: dict[str, list[float]] = {}
        for row in self.rows:
            means = {label: self.stats(row, label).mean for label in self.labels}
            means = {label: mean for label, mean in means.items() if mean is not None}
            for label, value in reciprocal_ranks(means, self.metric.lower_is_better).items():
                reciprocal.setdefault(label, []).append(value)
        ranked = [(label, statistics.fmean(values), len(values)) for label, values in reciprocal.items()]
        return sorted(ranked, key=lambda item: (-item[1], self.labels.index(item[0])))


def reciprocal_ranks(means: dict[str, float], lower_is_better: bool = False) -> dict[str, float]:
    """1 / rank of each label by its mean, best first; ties (``math.isclose``) share the better rank."""
    sign = -1 if lower_is_better else 1
    return {
        label: 1 / (1 + sum(sign * other > sign * mine and not math.isclose(other, mine) for other in means.values()))
        for label, mine in means.items()
    }


def factors(label: str) -> dict[str, str]:
    """A label as its factors: ``{"encoding": "rope", "image_encoding": "none", ...}``."""
    head, *options = label.split(" ")
    return {"encoding": head, **dict(option.partition("=")[::2] for option in options)}


def crossed(grid: Grid, row: Row) -> tuple[str, str, list[str], list[str], dict[tuple[str, str], str]] | None:
    """When the labels of ``row`` vary in exactly two factors and hold every pair of their values
    (a 2x2 ablation: ``encoding=none,rope model.image_encoding=none,sincos2d``): the two factors,
    the values of each in order of appearance, and the label of each pair; else None."""
    labels = [label for label in grid.labels if grid.runs(row, label)]
    parsed = {label: factors(label) for label in labels}
    keys = list(dict.fromkeys(key for each in parsed.values() for key in each))
    varying = [key for key in keys if len({each.get(key, "default") for each in parsed.values()}) > 1]
    if len(varying) != 2:
        return None
    first, second = varying
    cells = {(each.get(first, "default"), each.get(second, "default")): label for label, each in parsed.items()}
    downs, acrosses = (list(dict.fromkeys(pair[i] for pair in cells)) for i in (0, 1))
    full = len(cells) == len(downs) * len(acrosses)
    return (first, second, downs, acrosses, cells) if full else None


def crossed_tables(grid: Grid) -> list[str]:
    """A two-way table (first factor down, second across) for every row whose runs fully cross two factors."""
    parts = []
    for row in grid.rows:
        found = crossed(grid, row)
        if found is None:
            continue
        first, second, downs, acrosses, cells = found
        body = [[down, *(grid.stats(row, cells[(down, across)]).cell(grid.metric) for across in acrosses)] for down in downs]
        parts += [
            f"### {grid.name(row)}: {grid.metric.name} by {first} × {second}",
            markdown([f"{first} ↓  {second} →", *acrosses], body),
        ]
    return parts


def markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(cell.replace("|", "\\|") for cell in line) + " |" for line in lines)


def tables(grid: Grid) -> str:
    """The Markdown of the metric table, the Δ table and the ranking."""
    metric, first = grid.metric, "task / model" if grid.with_model else "task"
    better = "lower" if metric.lower_is_better else "higher"
    # chance and the constant-output ceiling are token accuracies: shown beside token accuracies only
    baselines = {"chance": grid.chance} if metric.key == "acc" else {}
    if baselines and any(grid.ceiling(row) is not None for row in grid.rows):
        baselines["constant ceiling"] = grid.ceiling
    main = [
        [grid.name(row), *(grid.stats(row, label).cell(metric) for label in grid.labels), grid.twins(row).cell(metric),
         *("—" if (value := baseline(row)) is None else f"{value:.3f}" for baseline in baselines.values())]
        for row in grid.rows
    ]
    compared = [label for label in grid.labels if any(grid.delta(row, label).n for row in grid.rows)]
    deltas = [[grid.name(row), *(grid.delta(row, label).cell(metric, sign=True) for label in compared)] for row in grid.rows]
    ranking = [
        [str(position), grid.shown[label], f"{mrr:.3f}", str(count)] for position, (label, mrr, count) in enumerate(grid.ranking(), 1)
    ]
    parts = [
        f"## {metric.name} ({better} is better)",
        "Mean ± sample std over seeds, n = seeds; only runs with status ok count. "
        "no-PE twin: the same configuration without an encoding, each distinct twin of the row once."
        + (" constant ceiling: the best constant output, a bound for a NoPE encoder." if len(baselines) > 1 else ""),
        markdown([first, *(grid.shown[label] for label in grid.labels), "no-PE twin", *baselines], main),
        *crossed_tables(grid),
        "## Δ vs the no-PE twin",
        f"Each run's {metric.name} minus its own twin's, mean ± std over seeds.",
        markdown([first, *(grid.shown[label] for label in compared)], deltas) if compared else "No run has a no-PE twin with this metric.",
        "## Ranking by mean reciprocal rank",
        (
            f"Within each row the labels are ranked by mean {metric.name} ({better} is better; ties share the better rank); "
            "MRR is the mean of 1/rank over the rows a label appears in (Kazemnejad et al. 2023, "
            "\"The Impact of Positional Encoding on Length Generalization in Transformers\")."
        ),
        markdown(["rank", "label", "MRR", "rows"], ranking) if ranking else "No run is ok: nothing to rank.",
    ]
    return "\n\n".join(parts)


def csv_text(grid: Grid) -> str:
    """One line per row and label, numbers at full precision; ``values`` holds ``seed=value`` pairs."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in grid.rows:
        for label in grid.labels:
            if not grid.present(row, label):
                continue
            stats, values = grid.stats(row, label), [(run.seed, grid.metric.of(run.data)) for run in grid.runs(row, label)]
            writer.writerow([
                row.task, row.model, label, grid.metric.name, _number(stats.mean), _number(stats.std), stats.n,
                _number(grid.twins(row, label).mean), _number(grid.delta(row, label).mean),
                _number(grid.chance(row)), _number(grid.ceiling(row)),
                " ".join(f"{seed}={value!r}" for seed, value in values if value is not None),
            ])
    return buffer.getvalue()


def _number(value: float | None) -> str:
    return "" if value is None else repr(value)


def _started(run: Run) -> str:
    return str((run.data.get("provenance") or {}).get("started") or "")

"""The reproduction section of a report: a sweep run from an experiment (``posbench train -m
experiment=NAME``, ``configs/experiment/``) sets its result beside the reported one, in the form
the paper reports it. The experiment writes ``reproduction`` into each run's configuration
(``posbench.config.Reproduction``): the paper, its finding, the metric and how to summarise:

* ``mrr``: within each task and each evaluation length beyond training, the labels are ranked by
  their mean over seeds (ties share the better rank; a label without a value ranks last); a label's
  MRR is its mean reciprocal rank over these (task, length) scenarios (Kazemnejad et al. 2023, §4),
  once among every label and once among the labels the paper ranked (comparable with its figures).
  ``published``: label -> MRR. The two orders are compared by Kendall's τ-b.
* ``randomized_gain``: each ``randomized(base=X)`` against ``X`` alone, task by task, averaged
  beyond training (Ruoss et al. 2023, Table 1). ``published``: ``mean_gain`` in points.
* ``by_seed``: every seed at every evaluation length (Zhou et al. 2024 report the spread over
  seeds). ``published``: ``best`` (the best seed at the longest length).
* ``published``: the metric per label beside the reported value (``published``: label -> value)
  and, when the experiment states them (``claims``: label -> sentence), each label's published claim.

Scores "beyond training" are the mean of the metric over the evaluation lengths (image sizes)
above the training range; with ``beyond: false`` the in-distribution test set's metric.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable

from posbench import scales
from posbench.reporting.collect import Run
from posbench.reporting.metric import Metric
from posbench.reporting.table import Grid, Row, Stats, markdown, reciprocal_ranks


def section(grid: Grid) -> str | None:
    """The ``## Reproduction`` Markdown, or None when the runs come from no experiment (or from
    several, by name and budget: then each sweep's folder has its own report). When the runs of one
    experiment recorded different descriptions of it (its file edited between two launches of the
    sweep: complete jobs are not run again), the most recently started run's is shown."""
    runs = [run for row in grid.rows for run in grid.runs(row)]
    if any(_spec(run) is None for run in runs) or len({(_spec(run)["name"], _spec(run)["budget"]) for run in runs}) != 1:
        return None
    spec = _spec(max(runs, key=lambda run: (run.data.get("provenance") or {}).get("started") or ""))
    metric = Metric(spec["metric"])
    where = "averaged over the evaluation lengths beyond training, mean over seeds" if spec["beyond"] else "on the in-distribution test set, mean over seeds"
    if spec["summary"] == "by_seed":
        where = "of every seed at every evaluation length"
    parts = [
        f"## Reproduction: {spec['name']} (budget {spec['budget']})",
        f"**Paper:** {spec['paper']}.  \n**Reported:** {spec['finding']}"
        + (f" ({spec['published_as']})." if spec["published_as"] else "."),
        f"**Here:** {metric.name} {where}.",
        *SUMMARIES[spec["summary"]](grid, spec, lambda run: score(run, spec)),
    ]
    return "\n\n".join(parts)


def experiment_metric(runs: list[Run]) -> str | None:
    """The metric the experiment of ``runs`` compares, when they all come from one."""
    metrics = {(_spec(run) or {}).get("metric") for run in runs}
    return metrics.pop() if len(metrics) == 1 else None


def _spec(run: Run) -> dict | None:
    config = run.data.get("config")
    return config.get("reproduction") if isinstance(config, dict) else None


def score(run: Run, spec: dict) -> float | None:
    """A run's number for the comparison: ``spec["metric"]`` beyond training (mean over lengths),
    or in distribution."""
    if not spec["beyond"]:
        return Metric(spec["metric"]).of(run.data)
    table = scales.scores(run.data) or {}
    values = [
        float(table[length][spec["metric"]]) for length in _beyond(run)
        if isinstance(table[length].get(spec["metric"]), (int, float))
    ]
    return statistics.fmean(values) if values else None


def shown(grid: Grid, label: str) -> str:
    """A label as the report shows it (without the options every run shares)."""
    return grid.shown[label]


def _stats(grid: Grid, scorer: Callable[[Run], float | None]) -> dict[tuple[Row, str], Stats]:
    """Each cell's scores (``scorer`` of its runs), by (row, label)."""
    return {
        (row, label): Stats([v for v in map(scorer, grid.runs(row, label)) if v is not None])
        for row in grid.rows for label in grid.labels
    }


def _table(grid: Grid, stats: dict) -> str:
    """The scores, task down and label across."""
    body = [[grid.name(row), *(stats[row, label].cell(Metric("acc")) for label in grid.labels)] for row in grid.rows]
    return markdown(["task", *(shown(grid, label) for label in grid.labels)], body)


def mrr(grid: Grid, spec: dict, scorer) -> list[str]:
    """Kazemnejad et al. 2023's ranking: MRR over (task, length beyond training) scenarios, over
    every label, and over the labels the paper ranked (``published``: their MRR is comparable)."""
    lower = Metric(spec["metric"]).lower_is_better
    published = spec["published"]
    paper_labels = [label for label in grid.labels if shown(grid, label) in published]
    here: dict[str, list[float]] = {label: [] for label in grid.labels}
    among: dict[str, list[float]] = {label: [] for label in paper_labels}
    for row in grid.rows:
        for length in _lengths_beyond(grid, row):
            at = Metric(spec["metric"], _axis(grid, row), length)
            means = {}
            for label in grid.labels:
                values = [v for v in (at.of(run.data) for run in grid.runs(row, label)) if v is not None]
                if values:
                    means[label] = statistics.fmean(values)
            if not means:
                continue
            for pool, found in ((grid.labels, here), (paper_labels, among)):
                ranks = reciprocal_ranks({label: means[label] for label in pool if label in means}, lower)
                for label in pool:  # a label without a value (not ok) ranks last
                    found[label].append(ranks.get(label, 1 / len(pool)))
    scores = {label: statistics.fmean(values) for label, values in here.items() if values}
    ranked = sorted(scores, key=lambda label: -scores[label])
    rows = [
        [str(1 + sum(other > scores[label] + 1e-9 for other in scores.values())), shown(grid, label),
         f"{scores[label]:.2f}", f"{statistics.fmean(among[label]):.2f}" if among.get(label) else "—",
         _published(published, shown(grid, label))]
        for label in ranked
    ]
    mine = {shown(grid, label): statistics.fmean(values) for label, values in among.items() if values}
    return [
        markdown(["rank", "label", "MRR, all labels", "MRR, the paper's labels", "MRR reported"], rows),
        f"Scenarios: {len(next(iter(here.values()), []))} (task, length beyond training); a label without a value "
        "in a scenario ranks last. The paper's labels are ranked among themselves for the column beside its figures.",
        f"Order here (the paper's labels): {_order(mine)}.  \nOrder reported: {_order(published)}.  \n"
        f"Kendall's τ-b between the two: {_tau_b(mine, published)}.",
        f"### {spec['metric']} beyond training, per task",
        _table(grid, _stats(grid, scorer)),
    ]


def randomized_gain(grid: Grid, spec: dict, scorer) -> list[str]:
    """Ruoss et al. 2023's comparison: every ``randomized(base=X)`` against ``X``, in points."""
    stats = _stats(grid, scorer)
    by_encoding = {shown(grid, label).split(" ")[0]: label for label in grid.labels}
    lines, gains = [], []
    for label in grid.labels:
        base = _base_of(shown(grid, label).split(" ")[0])
        if base is None or base not in by_encoding:
            continue
        pairs = [
            (stats[row, by_encoding[base]].mean, stats[row, label].mean) for row in grid.rows
            if stats[row, by_encoding[base]].mean is not None and stats[row, label].mean is not None
        ]
        if not pairs:
            continue
        alone, randomized = (statistics.fmean(side) for side in zip(*pairs))
        gain = 100 * statistics.fmean(r - a for a, r in pairs)
        gains.append(gain)
        best = max(100 * (r - a) for a, r in pairs)
        lines.append([base, f"{alone:.3f}", f"{randomized:.3f}", f"{gain:+.1f}", f"{best:+.1f}", str(len(pairs))])
    published = spec["published"].get("mean_gain")
    summary = (
        f"Mean gain here: {statistics.fmean(gains):+.1f} points over {len(gains)} encodings"
        if gains else "No randomized(base=X) run has its base X beside it: no gain to compute"
    )
    summary += f"; reported: {published:+.1f} points." if published is not None else "."
    return [
        markdown(["base", f"{spec['metric']} alone", "randomized", "gain (points)", "best task (points)", "tasks"], lines)
        if lines else "",
        summary,
        f"### {spec['metric']} beyond training, per task",
        _table(grid, stats),
    ]


def by_seed(grid: Grid, spec: dict, scorer) -> list[str]:
    """Every seed at every evaluation length (Zhou et al. 2024: the spread over seeds is the point)."""
    parts = []
    for row in grid.rows:
        lengths = sorted({int(n) for run in grid.runs(row) for n in (scales.scores(run.data) or {})})
        body, best = [], None
        for label in grid.labels:
            for run in sorted(grid.runs(row, label), key=lambda run: (not isinstance(run.seed, int), str(run.seed).zfill(12))):
                table = scales.scores(run.data) or {}
                values = [(table.get(str(n)) or {}).get(spec["metric"]) for n in lengths]
                body.append([shown(grid, label), str(run.seed), *("—" if v is None else f"{v:.3f}" for v in values)])
                if values and values[-1] is not None:
                    best = max(best or 0.0, values[-1])
        axis = scales.prefix(_axis(grid, row))
        parts += [f"### {grid.name(row)}: {spec['metric']} per seed", markdown(["label", "seed", *(f"{axis}{n}" for n in lengths)], body)]
        if best is not None:
            published = spec["published"].get("best")
            reported = f"; reported: {published:.3f} ({spec['published_as'] or 'the paper'})" if published is not None else ""
            parts.append(f"Best seed at {axis}{lengths[-1]}: {best:.3f}{reported}.")
    return parts


def published(grid: Grid, spec: dict, scorer) -> list[str]:
    """The metric per label and task beside the reported value, and the reported claim in words
    when the experiment gives one (``claims``)."""
    stats = _stats(grid, scorer)
    claims = spec.get("claims") or {}
    reported = bool(spec["published"]) or not claims
    rows = [
        [shown(grid, label), *(stats[row, label].cell(Metric("acc")) for row in grid.rows)]
        + ([_published(spec["published"], shown(grid, label))] if reported else [])
        + ([claims.get(shown(grid, label), "—")] if claims else [])
        for label in grid.labels
    ]
    header = ["label", *(grid.name(row) for row in grid.rows), *(["reported"] if reported else []), *(["published claim"] if claims else [])]
    return [markdown(header, rows)]


SUMMARIES: dict[str, Callable[[Grid, dict, Callable], list[str]]] = {
    "mrr": mrr, "randomized_gain": randomized_gain, "by_seed": by_seed, "published": published,
}


def _published(values: dict, label: str) -> str:
    value = values.get(label)
    return "—" if value is None else f"{value:g}"


def _axis(grid: Grid, row: Row) -> str:
    return scales.axis_of(next(iter(grid.runs(row)), Run(None, {})).data)


def _lengths_beyond(grid: Grid, row: Row) -> list[str]:
    """The evaluation lengths (sizes) of a row above its training range, in increasing order."""
    return sorted({length for run in grid.runs(row) for length in _beyond(run)}, key=int)


def _beyond(run: Run) -> list[str]:
    """The evaluation lengths (sizes) a run was scored at above its training range."""
    top = (run.train_lengths or [None, None])[1]
    return [n for n in scales.scores(run.data) or {} if top is not None and int(n) > top]


def _base_of(encoding: str) -> str | None:
    """``X`` of a ``randomized(base=X,...)`` label (X may hold parentheses), else None."""
    prefix = "randomized(base="
    if not encoding.startswith(prefix):
        return None
    depth, text = 0, encoding[len(prefix):]
    for end, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0 or (depth == 0 and char == ","):
            return text[:end]
    return None


def _order(values: dict[str, float]) -> str:
    """``none > t5 = alibi > rope``: labels by value, best first, ties joined by ``=``."""
    ordered = sorted(values, key=lambda label: -values[label])
    text = ordered[0] if ordered else "—"
    for before, label in zip(ordered, ordered[1:]):
        text += (" = " if math.isclose(values[before], values[label]) else " > ") + label
    return text


def _tau_b(first: dict[str, float], second: dict[str, float]) -> str:
    """Kendall's τ-b between two scorings of the labels in both (ties count for neither side);
    "—" below two labels or when either side is all ties."""
    common = [label for label in first if label in second]
    pairs = [(a, b) for i, a in enumerate(common) for b in common[i + 1:]]
    signs = [
        (_sign(first[a] - first[b]), _sign(second[a] - second[b])) for a, b in pairs
    ]
    agree = sum(x * y for x, y in signs)
    untied = (sum(x != 0 for x, _ in signs), sum(y != 0 for _, y in signs))
    if len(common) < 2 or 0 in untied:
        return f"— (over {len(common)} labels{', all tied on one side' if len(common) > 1 else ''})"
    return f"{agree / math.sqrt(untied[0] * untied[1]):+.2f} over {len(common)} labels"


def _sign(value: float) -> int:
    return 0 if math.isclose(value, 0.0, abs_tol=1e-9) else (1 if value > 0 else -1)

"""``posbench report DIR``: every results.json under a folder aggregated into ``report.md`` (a
table per metric, Δ against the no-PE twins, a ranking by mean reciprocal rank, what is not ok),
``report.csv`` and PNG plots. Reads files only: no torch.

* ``collect``: finding and reading results.json and sweep.json;
* ``metric``: the compared quantity (``--metric``);
* ``table``: aggregation, ranking, Markdown tables and CSV;
* ``plots``: the figures;
* ``problems``: the list of runs not ok and jobs not complete;
* ``reproduction``: an experiment's result beside the paper's (``posbench train -m experiment=NAME``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from posbench.errors import ConfigError
from posbench.reporting.collect import Collection, collect
from posbench.reporting.metric import parse as parse_metric
from posbench.reporting.plots import draw
from posbench.reporting.problems import section
from posbench.reporting.reproduction import experiment_metric
from posbench.reporting.reproduction import section as reproduction_section
from posbench.reporting.table import Grid, csv_text, tables
from posbench.training.files import write_text


def write_report(folder: Path, metric: str | None = None, out: Path | None = None, plots: bool = True) -> str:
    """Write ``report.md``, ``report.csv`` (and the PNGs) for the runs under ``folder`` into ``out``
    (default: ``folder``); returns the Markdown. A missing folder, one without results or an
    unknown metric is a ``ConfigError``. Without ``metric``: the one an experiment compares
    (``reproduction.metric``: a Kazemnejad et al. sweep reports exact match), else ``acc``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"{folder}: {'not a folder' if folder.exists() else 'no such folder'}")
    found = collect(folder)
    if not found.runs:
        unreadable = f" ({len(found.unreadable)} unreadable)" if found.unreadable else ""
        raise ConfigError(f"no results.json under {folder}{unreadable}")
    ok = [run.data for run in found.runs if run.status == "ok"]
    grid = Grid(found.runs, parse_metric(metric or experiment_metric(found.runs) or "acc", ok))
    out = folder if out is None else Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        figures = draw(grid, out) if plots else []  # matplotlib is imported only to draw
        text = _markdown(found, grid, figures)
        write_text(out / "report.md", text)
        write_text(out / "report.csv", csv_text(grid))
    except OSError as err:
        raise ConfigError(f"cannot write the report into {out}: {err.strerror or err}") from None
    return text


def _markdown(found: Collection, grid: Grid, figures: list[str]) -> str:
    runs, seeds = len(found.runs), len({str(run.seed) for run in found.runs})
    ok = sum(run.status == "ok" for run in found.runs)
    counts = f"{runs} run{'s' * (runs != 1)} ({ok} ok) over {seeds} seed{'s' * (seeds != 1)}"
    parts = [
        "# posbench report",
        f"{counts} in `{found.folder}`; metric: {grid.metric.name}."
        + (f" Every run has {' '.join(grid.common)} (left out of the labels below)." if grid.common else ""),
        *filter(None, [reproduction_section(grid)]),
        tables(grid),
        *(["## Plots", "\n".join(f"![{name}]({name})" for name in figures)] if figures else []),
        section(found, grid),
    ]
    return "\n\n".join(parts) + "\n"


def main(argv: list[str]) -> int:
    """``posbench report DIR [--metric M] [--out DIR] [--no-plots]`` (``argv``: the arguments after
    ``report``): writes the report and prints its Markdown. Bad arguments raise ``ConfigError``."""
    parser = argparse.ArgumentParser(
        prog="posbench report",
        description="Aggregate every results.json under DIR into report.md, report.csv and PNG plots.",
    )
    parser.add_argument("folder", type=Path, metavar="DIR", help="a run or sweep folder, or any folder above them")
    parser.add_argument("--metric", help="acc (default; an experiment's sweep: the metric it compares), seq_acc, pe_off[.seq_acc], len<L>[.seq_acc], size<S>[.seq_acc], pe_off.len<L>[.seq_acc], bleu, ppl, or a task's own (spatial_acc)")
    parser.add_argument("--out", type=Path, metavar="DIR", help="where to write the report (default: DIR)")
    parser.add_argument("--no-plots", dest="plots", action="store_false", help="write no PNG files")

    def refuse(message: str):
        raise ConfigError(f"{message} (see posbench report --help)")

    parser.error = refuse
    args = parser.parse_args(argv)
    print(write_report(args.folder, args.metric, args.out, args.plots), end="")
    return 0

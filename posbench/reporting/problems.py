"""The end of a report: every run that is not ``ok`` and every sweep job that is not complete
(failed, diverged, a diverged twin, superseded, skipped, reused, incomplete), and unreadable files."""

from __future__ import annotations

from posbench.reporting.collect import Collection
from posbench.reporting.table import Grid


def section(found: Collection, grid: Grid) -> str:
    lines = []
    for run in found.runs:
        if run.status == "failed":
            lines.append(f"failed: {run.describe()}: {run.data.get('error') or 'no error recorded'}")
        elif run.status == "diverged":
            lines.append(f"diverged: {run.describe()} at step {run.data.get('diverged_at')}")
        elif run.status != "ok":
            lines.append(f"status {run.status}: {run.describe()}")
        elif (run.twin or {}).get("status") == "diverged":
            lines.append(f"twin diverged: the no-PE twin of {run.describe()} at step {run.twin.get('diverged_at')} (no Δ)")
    lines += [f"superseded: {run.describe()} (a later run of the same label, task, model and seed counts)" for run in grid.superseded]
    for job in found.jobs:
        if job.entry.get("state") == "skipped":
            lines.append(f"skipped: {job.describe()}: {job.entry.get('reason') or 'no reason recorded'}")
        elif not job.complete:
            lines.append(f"incomplete: {job.describe()}: no results.json yet (running, interrupted or killed)")
    reused = sum(job.entry.get("state") == "reused" for job in found.jobs)
    if reused:
        lines.append(f"{reused} job{'s' if reused > 1 else ''} reused from an earlier launch")
    lines += [f"unreadable: `{path}`: {why}" for path, why in found.unreadable]
    body = "\n".join(f"- {line}" for line in lines) if lines else "None: every run is ok and every sweep job complete."
    return f"## Runs not ok, jobs not complete\n\n{body}"

"""Finding what a folder holds: every ``results.json`` (one per run) and ``sweep.json`` (one per
sweep) under it, read without ever failing on a damaged file.

A file that cannot be read, is not JSON or lacks the fields a report needs is listed as unreadable.
Twin-cache folders (``twins/``) are skipped: their entries hold ``outcome.json``, not runs.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

#: What a results.json must hold for the report to place it.
REQUIRED = ("status", "task", "model", "seed")
_NUMBER, _TABLE = (int, float, type(None)), (dict, type(None))
#: The types the report relies on, where the field is present.
SHAPES = {
    "status": str, "task": str, "model": str, "seed": (int, str), "label": (str, type(None)), "encoding": (str, type(None)),
    "chance": _NUMBER, "constant_ceiling": _NUMBER, "metrics": _TABLE, "pe_off": _TABLE,
    "nope": _TABLE, "provenance": _TABLE, "config": _TABLE, "analysis": _TABLE,
}


def natural(path: Path) -> list:
    """Sort key that puts ``2_rope`` before ``10_rope``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.as_posix())]


@dataclass
class Run:
    """One results.json: ``where`` is its run folder relative to the reported folder."""

    where: Path
    data: dict

    @property
    def status(self) -> str:
        return self.data["status"]

    @property
    def label(self) -> str:
        """The run's variant (encoding with options, other overrides); older files: the encoding."""
        return str(self.data.get("label") or self.data.get("encoding"))

    @property
    def seed(self):
        return self.data["seed"]

    @property
    def twin(self) -> dict | None:
        return self.data.get("nope")

    @property
    def twin_id(self) -> str:
        """What tells twins apart: their cache folder (without one, the run's label and seed)."""
        return str((self.data.get("provenance") or {}).get("twin") or (self.label, self.seed))

    @property
    def train_lengths(self) -> list | None:
        """``[lo, hi]`` of the training lengths (an image task's: sizes): results.json's own, else
        the task configuration's."""
        lengths = self.data.get("train_lengths", self.data.get("train_sizes"))
        if lengths is None:
            task = (self.data.get("config") or {}).get("task")
            lengths = task.get("train_lengths") if isinstance(task, dict) else None
        ok = isinstance(lengths, list) and len(lengths) == 2 and all(isinstance(x, (int, float)) for x in lengths)
        return lengths if ok else None

    def describe(self) -> str:
        return f"`{self.where}` {_what(self.label, self.data['task'], self.data['model'], self.seed)}"


@dataclass
class Job:
    """One job of a sweep.json; ``where`` is its run folder relative to the reported folder."""

    where: Path
    entry: dict
    complete: bool

    def describe(self) -> str:
        entry = self.entry
        what = _what(*(entry.get(key, "?") for key in ("label", "task", "model", "seed")))
        return f"job {entry.get('number', '?')} `{self.where}` {what}"


def _what(label, task, model, seed) -> str:
    return f"({label}, {task} / {model}, seed {seed})"


@dataclass
class Collection:
    """What a folder holds: its runs, its sweeps' jobs and the files that could not be used."""

    folder: Path
    runs: list[Run] = field(default_factory=list)
    jobs: list[Job] = field(default_factory=list)
    #: ``(path relative to folder, why)`` of every file that could not be used.
    unreadable: list[tuple[Path, str]] = field(default_factory=list)


def collect(folder: Path) -> Collection:
    """Every run and sweep job under ``folder``, in natural path order."""
    found = Collection(folder)
    for path in sorted(_files(folder), key=natural):
        relative = path.relative_to(folder)
        data, why = _read(path)
        if why is None and path.name == "results.json":
            why = _check_run(data)
            if why is None:
                found.runs.append(Run(relative.parent, data))
        elif why is None:
            why = _add_jobs(found, path, data)
        if why is not None:
            found.unreadable.append((relative, why))
    return found


def _files(folder: Path):
    for root, dirs, files in os.walk(folder):
        dirs[:] = [name for name in dirs if name != "twins"]
        yield from (Path(root, name) for name in files if name in ("results.json", "sweep.json"))


def _read(path: Path) -> tuple[object, str | None]:
    try:
        return json.loads(path.read_text()), None
    except OSError as err:
        return None, err.strerror or type(err).__name__
    except ValueError as err:  # not UTF-8, not JSON (e.g. cut off while written by hand)
        return None, f"not JSON ({str(err).splitlines()[0]})"


def _check_run(data) -> str | None:
    if not isinstance(data, dict):
        return "not a JSON object"
    missing = [key for key in REQUIRED if key not in data]
    if missing or not (data.get("label") or data.get("encoding")):
        return "lacks " + ", ".join(missing or ["label and encoding"])
    twin = data["nope"] if isinstance(data.get("nope"), dict) else {}
    wrong = [key for key, kinds in SHAPES.items() if not isinstance(data.get(key), kinds)]
    tables = [(f"{where}{key}", entry.get(key)) for where, entry in (("", data), ("nope.", twin)) for key in ("lengths", "sizes")]
    tables += [(key, data.get(key)) for key in ("pe_off_lengths", "pe_off_sizes")]
    wrong += [key for key, table in tables if not _by_length(table)]
    if not isinstance(twin.get("metrics"), _TABLE):
        wrong.append("nope.metrics")
    return "unexpected " + ", ".join(wrong) if wrong else None


def _by_length(lengths) -> bool:
    """Whether ``lengths`` is null or maps lengths or sizes (digits) to tables."""
    return lengths is None or isinstance(lengths, dict) and all(
        length.isdigit() and isinstance(values, dict) for length, values in lengths.items())


def _add_jobs(found: Collection, path: Path, data) -> str | None:
    jobs = data.get("jobs") if isinstance(data, dict) else None
    # a job skipped as invalid may have no folder (its configuration did not compose)
    if not isinstance(jobs, list) or not all(
        isinstance(job, dict) and (job.get("run_dir") or job.get("state") == "skipped") for job in jobs
    ):
        return "no list of jobs with run_dir"
    for entry in jobs:
        run_dir = path.parent / str(entry.get("run_dir") or "")
        where = Path(os.path.relpath(run_dir, found.folder))
        found.jobs.append(Job(where, entry, bool(entry.get("run_dir")) and (run_dir / "results.json").is_file()))
    return None

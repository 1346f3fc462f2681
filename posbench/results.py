"""``results.json``: what one run produced and under which conditions.

Every results.json has a ``status``:

* ``ok``: trained and evaluated; ``metrics``, ``lengths``, ``pe_off`` (and ``nope``) hold numbers;
* ``diverged``: the training loss became NaN or infinite at step ``diverged_at``; the run stopped
  there and holds no accuracy (``metrics``, ``lengths``, ``pe_off`` are null), so that nothing
  can mistake the accuracy of NaN weights for a measurement;
* ``failed``: the run raised an error after its configuration was accepted (``error`` says
  which); written so that a sweep shows the job and carries on with the others.

``provenance`` says under which conditions the numbers were obtained: posbench's version (and git
commit when run from a checkout), torch and Python versions, the device and its name, the thread
count, wall time, parameter counts, the fingerprint of the configuration and the no-PE twin's
cache folder.
"""

from __future__ import annotations

import datetime
import functools
import platform
import subprocess
from pathlib import Path

import torch

import posbench
from posbench.hardware import device_name


def outcome_of_divergence(step: int) -> dict:
    """The outcome of a model whose training diverged at ``step``: no numbers."""
    return {"status": "diverged", "diverged_at": step, "metrics": None, "lengths": None, "pe_off": None}


def assemble(job, outcome: dict, nope: dict | None, chance: float, ceiling: float | None, provenance: dict) -> dict:
    """The content of results.json for a finished (``ok`` or ``diverged``) run."""
    cfg = job.cfg
    return {
        "status": outcome["status"],
        "encoding": cfg["encoding"]["name"],
        "task": cfg["task"]["name"],
        "model": cfg["model"]["name"],
        "seed": cfg["seed"],
        "chance": chance,
        "constant_ceiling": ceiling,
        "device": job.device.type,
        "diverged_at": outcome.get("diverged_at"),
        "metrics": outcome["metrics"],
        "lengths": outcome["lengths"],
        "pe_off": outcome["pe_off"],
        "nope": nope,
        "provenance": provenance,
        "config": cfg,
    }


def failed(job, error: BaseException, provenance: dict) -> dict:
    """The content of results.json for a run that raised ``error`` after validation."""
    cfg = job.cfg
    message = str(error).strip().splitlines()
    return {
        "status": "failed",
        "error": f"{type(error).__name__}: {message[0]}" if message else type(error).__name__,
        "encoding": cfg["encoding"]["name"],
        "task": cfg["task"]["name"],
        "model": cfg["model"]["name"],
        "seed": cfg["seed"],
        "device": job.device.type,
        "metrics": None,
        "lengths": None,
        "pe_off": None,
        "nope": None,
        "provenance": provenance,
        "config": cfg,
    }


def twin_summary(outcome: dict) -> dict:
    """The ``nope`` entry of results.json from the twin's outcome."""
    return {key: outcome.get(key) for key in ("status", "diverged_at", "metrics", "lengths")}


def provenance(job, started: float, finished: float, twin: Path | None) -> dict:
    """The conditions of a run: versions, device, threads, time, sizes, fingerprint, twin folder."""
    return {
        "posbench": posbench.__version__,
        **git_revision(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device_name": device_name(job.device),
        "threads": job.threads,
        "started": datetime.datetime.fromtimestamp(started, datetime.timezone.utc).isoformat(timespec="seconds"),
        "wall_time_s": round(finished - started, 3),
        "parameters": job.parameters,
        "fingerprint": job.fingerprint,
        "twin": None if twin is None else str(twin.absolute()),
    }


@functools.cache
def git_revision() -> dict:
    """``git_commit`` and ``git_dirty`` when posbench runs from a git checkout (an editable install),
    else empty."""
    root = Path(posbench.__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return {}
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        status = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return {}
    if commit.returncode != 0:
        return {}
    return {"git_commit": commit.stdout.strip(), "git_dirty": bool(status.stdout.strip())}

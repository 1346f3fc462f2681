"""``results.json``: what one run produced and under which conditions.

Every results.json has a ``status`` and a ``label`` (what sets the run apart from the defaults,
``posbench.labels``):

* ``ok``: trained and evaluated; ``metrics``, ``lengths`` (an image task: ``sizes``), ``pe_off``,
  ``pe_off_lengths`` (``pe_off_sizes``: the same model with its encoding switched off, per
  evaluation length; null for a model without one) and ``nope`` hold numbers; the other of
  ``lengths``/``sizes`` is null (``posbench.scales``);
* ``diverged``: the training loss became NaN or infinite at step ``diverged_at``; the run stopped
  there and holds no accuracy (``metrics``, ``lengths``, ``pe_off``... are null), so that nothing
  can mistake the accuracy of NaN weights for a measurement;
* ``failed``: the run raised an error after its configuration was accepted (``error`` says
  which); written so that a sweep shows the job and carries on with the others.

``provenance`` says under which conditions the numbers were obtained: posbench's version (and git
commit when run from a checkout), torch and Python versions, the device and its name, the thread
count, wall time, parameter counts, the fingerprint of the configuration and the no-PE twin's
cache folder.

``analysis`` (absent until then) is added by ``posbench analyze`` (``posbench.analysis``): position
probes and attention distances of the trained model and its twin, with the settings used.
"""

from __future__ import annotations

import datetime
import functools
import platform
import subprocess
from pathlib import Path

import torch

import posbench
from posbench import scales
from posbench.errors import first_line
from posbench.hardware import device_name
from posbench.labels import label
from posbench.training.evaluate import constant_output_ceiling


def outcome_of_divergence(step: int) -> dict:
    """The outcome of a model whose training diverged at ``step``: no numbers."""
    return {
        "status": "diverged", "diverged_at": step, "metrics": None, "lengths": None, "sizes": None, "pe_off": None,
        "pe_off_lengths": None, "pe_off_sizes": None,
    }


def assemble(job, outcome: dict, nope: dict | None, provenance: dict) -> dict:
    """The content of results.json for a finished (``ok`` or ``diverged``) run."""
    pe_off_by_scale = scales.pe_off_key(job.task.axis)
    return _record(
        job, outcome["status"], provenance,
        chance=job.task.chance,
        # the bound is for a NoPE encoder reading sequences: an image's label or caption has none
        constant_ceiling=None if job.task.inputs != "sequences" else constant_output_ceiling(job.task.test_set("cpu")),
        diverged_at=outcome.get("diverged_at"),
        metrics=outcome["metrics"], lengths=outcome.get("lengths"), sizes=outcome.get("sizes"),
        pe_off=outcome["pe_off"], **{pe_off_by_scale: outcome.get(pe_off_by_scale)}, nope=nope,
    )


def failed(job, error: BaseException, provenance: dict) -> dict:
    """The content of results.json for a run that raised ``error`` after validation."""
    message = f"{type(error).__name__}: {first_line(error)}" if str(error).strip() else type(error).__name__
    return _record(
        job, "failed", provenance, error=message, metrics=None, lengths=None, sizes=None, pe_off=None,
        **{scales.pe_off_key(job.task.axis): None}, nope=None,
    )


def _record(job, status: str, provenance: dict, **fields) -> dict:
    """What every results.json holds: the status, what was run and where, ``fields``, the
    conditions and the whole configuration."""
    cfg = job.cfg
    identity = {key: cfg[key]["name"] for key in ("encoding", "task", "model")}
    return {
        "status": status, "label": label(cfg), **identity, "seed": cfg["seed"], "device": job.device.type,
        scales.train_key(job.task.axis): list(job.task.train_lengths), **fields, "provenance": provenance, "config": cfg,
    }


def twin_summary(outcome: dict) -> dict:
    """The ``nope`` entry of results.json from the twin's outcome."""
    return {key: outcome.get(key) for key in ("status", "diverged_at", "metrics", "lengths", "sizes")}


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

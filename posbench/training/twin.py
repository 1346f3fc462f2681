"""The no-PE twin cache: a twin is trained once per distinct configuration and reused.

Twins live under ``<cache_root>/<key>/`` (``outcome.json``, TensorBoard events, checkpoint). A file
lock per key makes concurrent jobs that need the same twin (a multirun on several workers) train
it once: the first takes the lock and trains, the others wait and then read its outcome. An
interrupted twin resumes from its checkpoint the next time it is needed.

The cache is shared (between runs, sweeps, cluster workers), so an entry is never trusted blindly:
one whose ``outcome.json`` does not parse or lacks what a run reads, whose checkpoint does not
load, or whose folder is a file, is discarded with a log line and trained again. Nothing in an
entry can run code (checkpoints load with ``weights_only=True``).
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Callable

from filelock import FileLock

from posbench import scales
from posbench.training.files import write_json
from posbench.training.loop import CorruptCheckpoint

log = logging.getLogger(__name__)

#: Part of every entry's key: entries written in an older format are not read. 2: the events hold
#: a per-run HParams session, no experiment-wide summary (which would hide every other run's
#: hparams in TensorBoard), and accuracy against length as a curve. 3: checkpoints name the
#: feed-forward's layers ``fc1``/``fc2`` (the ``ffn`` hook sits between them).
CACHE_FORMAT = 3


def twin_outcome(folder: Path, train: Callable[[Path], dict]) -> dict:
    """The outcome cached in ``folder`` (``<cache root>/<key>``), calling ``train(folder)`` on a miss."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder.with_name(f"{folder.name}.lock"))):
        outcome = read_outcome(folder)
        if outcome is not None:
            return outcome
        folder.mkdir(exist_ok=True)
        try:
            outcome = train(folder)
        except CorruptCheckpoint as err:
            discard(folder, f"its checkpoint does not load ({err.path.name})")
            folder.mkdir()
            outcome = train(folder)
        write_json(folder / "outcome.json", outcome)
        return outcome


def read_outcome(folder: Path) -> dict | None:
    """The outcome stored in an entry, or None (a miss) when there is none yet; an entry that is
    not a folder, or whose outcome.json is unreadable or incomplete, is discarded."""
    if not folder.exists():
        return None
    if not folder.is_dir():
        discard(folder, "it is a file, not a folder")
        return None
    path = folder / "outcome.json"
    if not path.exists():
        return None  # not trained yet, or interrupted: training resumes from its checkpoint
    try:
        outcome = json.loads(path.read_text())
        valid = complete(outcome)
    except (ValueError, TypeError, KeyError, OSError, AttributeError):
        valid = False
    if not valid:
        discard(folder, "its outcome.json is unreadable or incomplete")
        return None
    return outcome


def complete(outcome: dict) -> bool:
    """Whether a stored outcome holds what a run reads: numbers for every metric and length (size) when
    ``ok``, the step when ``diverged``."""
    if outcome["status"] == "diverged":
        return isinstance(outcome["diverged_at"], int)
    scores = [outcome["metrics"], *scales.scores(outcome).values()]
    return outcome["status"] == "ok" and all(
        isinstance(score, dict) and isinstance(score.get("acc"), float | int) for score in scores
    )


def discard(entry: Path, why: str) -> None:
    log.warning(f"no-PE twin cache: discarding {entry} ({why}); training the twin again")
    if entry.is_dir():
        shutil.rmtree(entry)
    else:
        entry.unlink()

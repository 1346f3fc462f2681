"""The no-PE twin cache: a twin is trained once per distinct configuration and reused.

Twins live under ``<cache_root>/<key>/`` (``outcome.json``, TensorBoard events, checkpoint). A file
lock per key makes concurrent jobs that need the same twin (a multirun on several workers) train
it once: the first takes the lock and trains, the others wait and then read its outcome. An
interrupted twin resumes from its checkpoint the next time it is needed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from filelock import FileLock

from posbench.training.files import write_json


def twin_outcome(key: str, cache_root: Path, train: Callable[[Path], dict]) -> tuple[dict, Path]:
    """The cached outcome for ``key`` (calling ``train(folder)`` on a miss) and its folder."""
    folder = cache_root / key
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(str(cache_root / f"{key}.lock")):
        path = folder / "outcome.json"
        if path.exists():
            return json.loads(path.read_text()), folder
        outcome = train(folder)
        write_json(path, outcome)
        return outcome, folder

"""Atomic writes: a reader sees the old file or the new one, never half of one. Files get the
permissions of any file the user creates (``0666`` less the umask), so that collaborators on shared
storage can read results and checkpoints. (torch is imported only to save a checkpoint: the report
writes its files with this module and does not load torch.)"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def atomic(path: Path, write) -> None:
    """Call ``write`` on a temporary file beside ``path`` (its folder created), then move it onto ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp creates 0600; results are for collaborators too
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path: str | Path, data: Any) -> None:
    """``data`` as indented JSON, keys in the order the dict holds them."""
    atomic(Path(path), lambda f: f.write((json.dumps(data, indent=2) + "\n").encode()))


def write_text(path: str | Path, text: str) -> None:
    atomic(Path(path), lambda f: f.write(text.encode()))


def save_torch(path: str | Path, obj: Any) -> None:
    import torch

    atomic(Path(path), lambda f: torch.save(obj, f))

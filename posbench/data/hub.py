"""Load a task's train and test splits with Hugging Face ``datasets``: one code path for hub
datasets (``task.dataset``, ``task.dataset_config``) and local files (``task.data_files``).

* ``task.data_files``: a path, a list of paths, or a ``{split: path or list}`` mapping. The format
  comes from the extension (``.csv``/``.tsv`` -> ``csv``, ``.json``/``.jsonl`` -> ``json``,
  ``.parquet`` -> ``parquet``, ``.txt`` -> ``text``, ``.arrow`` -> ``arrow``, ``.png``/``.jpg``/
  ``.jpeg`` -> ``imagefolder``, whose labels are the names of the images' folders; a ``.gz``/
  ``.bz2``/``.xz``/``.zst`` suffix is allowed). A folder stands for every file with one of those
  extensions under it. With ``data_files`` the dataset name is ignored. A single path or a list
  is one split named ``train``: slice it with ``task.split``.
* ``task.split``: which dataset split plays each posbench role, ``{train: ..., test: ...}``
  (default ``{train: train, test: test}``); slicing passes through to ``datasets``, e.g.
  ``{train: "train[:90%]", test: "train[90%:]"}`` or ``{train: train, test: validation}``.

Offline: for a hub name, unless ``HF_DATASETS_OFFLINE``/``HF_HUB_OFFLINE`` is set, the hub host
is probed once per process (TCP connect, ``PROBE_TIMEOUT`` seconds, in a thread so a hanging DNS
lookup cannot block). If it is unreachable, ``datasets`` is switched to offline mode, which serves
cached datasets and fails at once otherwise (instead of retrying for about 23 s); a dataset that is
neither reachable nor cached is a one-line ``ConfigError`` that says how to use local files.
"""

from __future__ import annotations

import glob
import logging
import os
import socket
import sys
import threading
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

from posbench.data import require
from posbench.errors import ConfigError, first_line

log = logging.getLogger(__name__)

#: The posbench roles a split mapping assigns.
ROLES = ("train", "test")
#: File extension -> ``datasets`` packaged builder.
FORMATS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".json": "json",
    ".jsonl": "json",
    ".parquet": "parquet",
    ".txt": "text",
    ".arrow": "arrow",
    ".png": "imagefolder",
    ".jpg": "imagefolder",
    ".jpeg": "imagefolder",
}
COMPRESSION = (".gz", ".bz2", ".xz", ".zst")
#: Seconds allowed for the hub reachability probe (connect only).
PROBE_TIMEOUT = 3.0

_hub_reachable: bool | None = None  # probed once per process


# ---- offline handling --------------------------------------------------------------------------
def _hub_address() -> tuple[str, int]:
    """Host and port that a hub request would connect to first (the HTTPS proxy, if one applies)."""
    url = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    host = url.hostname or "huggingface.co"
    port = url.port or (443 if url.scheme == "https" else 80)
    proxy = urllib.request.getproxies().get(url.scheme or "https")
    if proxy and not urllib.request.proxy_bypass(host):
        parsed = urlparse(proxy if "://" in proxy else f"http://{proxy}")
        if parsed.hostname:
            return parsed.hostname, parsed.port or 80
    return host, port


def hub_reachable(timeout: float = PROBE_TIMEOUT) -> bool:
    """Whether a TCP connection to the hub (or its proxy) opens within ``timeout`` seconds. The
    DNS lookup, which a socket timeout does not bound, runs in a daemon thread that is abandoned
    after ``timeout``."""
    host, port = _hub_address()
    outcome: list[bool] = []

    def connect() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                outcome.append(True)
        except OSError:
            outcome.append(False)

    thread = threading.Thread(target=connect, name="posbench-hub-probe", daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    return bool(outcome and outcome[0])


def offline_requested() -> bool:
    """Whether the environment (or an earlier probe) put the Hugging Face libraries offline."""
    for name in ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE"):
        if os.environ.get(name, "").upper() in ("1", "ON", "YES", "TRUE"):
            return True
    return False


def go_offline() -> None:
    """Put ``datasets`` and ``huggingface_hub`` in offline mode: the environment variables for a
    later import, and their module flags if they are already imported (they read the variables at
    import time)."""
    os.environ["HF_DATASETS_OFFLINE"] = "1"
    os.environ["HF_HUB_OFFLINE"] = "1"
    config = sys.modules.get("datasets.config")
    if config is not None:
        config.HF_HUB_OFFLINE = True
        if hasattr(config, "HF_DATASETS_OFFLINE"):
            config.HF_DATASETS_OFFLINE = True
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:
        constants.HF_HUB_OFFLINE = True


def ensure_offline_if_unreachable() -> bool:
    """Probe the hub once per process unless the offline variables are set (either one, to any
    value, is the user's decision); switch to offline mode if it is unreachable. Returns whether
    the libraries are offline."""
    global _hub_reachable
    if any(name in os.environ for name in ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE")):
        return offline_requested()
    if _hub_reachable is None:
        _hub_reachable = hub_reachable()
        if not _hub_reachable:
            log.info("huggingface.co is unreachable: loading datasets in offline mode (cache only)")
    if not _hub_reachable:
        go_offline()
    return not _hub_reachable


# ---- local files -------------------------------------------------------------------------------
def _format(path: str) -> str:
    name = path.lower()
    for suffix in COMPRESSION:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    ext = os.path.splitext(name)[1]
    if ext not in FORMATS:
        raise ConfigError(
            f"task.data_files: cannot tell the format of {path!r} from its extension; "
            f"use one of {', '.join(FORMATS)}"
        )
    return ext


def _known(path: str) -> bool:
    try:
        _format(path)
    except ConfigError:
        return False
    return True


def _resolve(path) -> list[str]:
    """Absolute paths (a glob pattern may match several files, a folder stands for the files of a
    known format under it); a missing file is a ConfigError."""
    text = os.path.expanduser(str(path))
    absolute = os.path.abspath(text)
    if os.path.isdir(absolute):
        found = sorted(
            os.path.join(root, name)
            for root, folders, names in os.walk(absolute)
            for name in names
            if not name.startswith(".") and _known(name)
        )
        if not found:
            raise ConfigError(
                f"task.data_files: the folder {str(path)!r} holds no file of a known format ({', '.join(FORMATS)})"
            )
        images = [name for name in found if FORMATS[_format(name)] == "imagefolder"]
        return images or found  # an image folder's metadata.csv or README.txt is not data
    if any(ch in text for ch in "*?["):
        matches = sorted(glob.glob(absolute))
        if not matches:
            raise ConfigError(f"task.data_files: no file matches {str(path)!r}")
        return matches
    if not os.path.isfile(absolute):
        raise ConfigError(f"task.data_files: no such file {str(path)!r} (looked for {absolute})")
    return [absolute]


def resolve_data_files(data_files) -> tuple[str, dict[str, list[str]], dict]:
    """``(builder, {split: [absolute paths]}, builder kwargs)`` for ``task.data_files``."""
    if isinstance(data_files, (str, Path)):
        mapping = {"train": [data_files]}
    elif isinstance(data_files, (list, tuple)):
        mapping = {"train": list(data_files)}
    elif isinstance(data_files, dict):
        mapping = {
            str(key): value if isinstance(value, (list, tuple)) else [value] for key, value in data_files.items()
        }
    else:
        raise ConfigError(
            f"task.data_files={data_files!r} must be a path, a list of paths or a {{split: path}} mapping"
        )
    if not mapping or not all(mapping.values()):
        raise ConfigError(f"task.data_files={data_files!r} names no file")
    files = {split: [p for path in paths for p in _resolve(path)] for split, paths in mapping.items()}
    extensions = {_format(p) for paths in files.values() for p in paths}
    builders = {FORMATS[ext] for ext in extensions}
    if len(builders) > 1 or extensions == {".csv", ".tsv"}:
        raise ConfigError(f"task.data_files mixes formats ({', '.join(sorted(extensions))}); use files of one format")
    kwargs = {"sep": "\t"} if extensions == {".tsv"} else {}
    return builders.pop(), files, kwargs


def files_signature(data_files) -> tuple:
    """What identifies the content of ``data_files``: paths, sizes and modification times."""
    if data_files is None:
        return ()
    _, files, _ = resolve_data_files(data_files)
    return tuple(
        (split, path, os.stat(path).st_size, os.stat(path).st_mtime_ns)
        for split, paths in sorted(files.items())
        for path in paths
    )


# ---- loading -----------------------------------------------------------------------------------
def split_mapping(split) -> dict[str, str]:
    """``task.split`` as ``{role: dataset split}`` for both roles (a missing role keeps its name)."""
    split = {} if split is None else split
    if not isinstance(split, dict):
        raise ConfigError(f"task.split={split!r} must be a mapping like {{train: train, test: validation}}")
    unknown = sorted(set(split) - set(ROLES))
    if unknown:
        raise ConfigError(f"task.split has unknown role(s) {', '.join(unknown)}; its roles: {', '.join(ROLES)}")
    mapping = {role: split.get(role) or role for role in ROLES}
    for role, name in mapping.items():
        if not isinstance(name, str):
            raise ConfigError(f"task.split.{role}={name!r} must be a split name such as 'train' or 'train[:1000]'")
    return mapping


def describe(dataset: str | None, data_files) -> str:
    """How messages name the data: ``task.dataset=...`` or ``task.data_files=...``."""
    return f"task.data_files={data_files}" if data_files is not None else f"task.dataset={dataset}"


def _reason(err: BaseException) -> str:
    """What went wrong while ``datasets`` read the files, in one line: its generic "An error
    occurred while generating the dataset" wraps the parser's error (pandas, pyarrow), and names
    columns that differ between files in its own text."""
    for line in str(err).splitlines():
        if "must have the same columns" in line:
            return line.strip()
    while err.__cause__ is not None or err.__context__ is not None:
        err = err.__cause__ or err.__context__
    return f"{type(err).__name__}: {first_line(err)}"


def load_splits(dataset: str | None, dataset_config: str | None = None, data_files=None, split=None) -> dict:
    """``{"train": datasets.Dataset, "test": datasets.Dataset}`` for the configured data.

    Raises ``ConfigError`` (one line) for missing files, unknown splits, bad slicing, and a hub
    dataset that cannot be reached and is not cached.
    """
    roles = split_mapping(split)
    where = describe(dataset, data_files)
    offline = False
    kwargs: dict = {}
    if data_files is not None:
        path, files, kwargs = resolve_data_files(data_files)
        kwargs["data_files"] = files
        name = None
    else:
        if not dataset:
            raise ConfigError("set task.dataset (a Hugging Face hub name) or task.data_files (local files)")
        name = dataset_config
        local = os.path.expanduser(str(dataset))
        if os.path.isdir(local):  # a local folder of data files, read like a hub repository
            path = os.path.abspath(local)
        else:
            path = str(dataset)
            offline = ensure_offline_if_unreachable()
    datasets = require("datasets", "task data loading")
    datasets.disable_progress_bars()  # a refusal is one line; reading local files is quick
    datasets.logging.set_verbosity_error()
    loaded = {}
    for role, split_name in roles.items():
        try:
            loaded[role] = datasets.load_dataset(path, name, split=split_name, **kwargs)
        except ValueError as err:
            message = first_line(err)
            if message.startswith("Unknown split"):
                available = message.split("Should be one of", 1)[-1].strip(" .")
                hint = ""
                if data_files is not None and not isinstance(data_files, dict):
                    hint = (
                        "; a single file or list is one split named 'train': use "
                        "task.data_files={train: ..., test: ...} or slice it, "
                        "e.g. task.split={train: 'train[:90%]', test: 'train[90%:]'}"
                    )
                raise ConfigError(
                    f"task.split.{role}={split_name!r} is not a split of {where}; available splits: {available}{hint}"
                ) from None
            if "corresponds to no data" in message:
                raise ConfigError(f"the {role} split ({split_name!r}) of {where} has no rows") from None
            if "instruction" in message.lower():
                raise ConfigError(
                    f"task.split.{role}={split_name!r} is not a valid split (use e.g. 'train', 'train[:1000]', "
                    f"'train[:90%]'): {message}"
                ) from None
            raise ConfigError(f"{where} could not be loaded: {message}") from None
        except (ConnectionError, FileNotFoundError) as err:
            if data_files is None and (offline or offline_requested()):
                raise ConfigError(
                    f"task.dataset={dataset} could not be loaded (no network and not in the Hugging Face cache); "
                    "point task.data_files at local csv/json/parquet/image files, "
                    "e.g. task.data_files={train: train.csv, test: test.csv}"
                ) from None
            if data_files is None and type(err).__name__ == "DatasetNotFoundError":
                raise ConfigError(
                    f"task.dataset={dataset} was not found on the Hugging Face Hub (or needs a login); check the "
                    "name, or point task.data_files at local files, "
                    "e.g. task.data_files={train: train.csv, test: test.csv}"
                ) from None
            raise ConfigError(f"{where} could not be loaded: {first_line(err)}") from None
        except Exception as err:  # datasets raises many types (parse errors of malformed files, ...)
            if isinstance(err, ConfigError):
                raise
            raise ConfigError(f"{where} could not be loaded: {_reason(err)}") from None
    return loaded


def require_columns(table, columns: dict[str, str], role: str, where: str) -> None:
    """Raise ``ConfigError`` naming the option and the available columns if ``table`` (a
    ``datasets.Dataset``) lacks one of ``columns`` (``{option: column name}``)."""
    available = list(table.column_names)
    for option, column in columns.items():
        if column not in available:
            raise ConfigError(
                f"{option}={column!r} is not a column of the {role} split of {where}; "
                f"available columns: {', '.join(available)}"
            )


def column(table, name: str) -> list:
    """The values of one column as a plain list."""
    return list(table[name])

"""A trained run read back from its folder, for the commands that look at one (``posbench plot
run=DIR``, ``posbench analyze DIR``): its ``results.json`` checked, its configuration normalised,
and the weights of its checkpoint, which must have been written by that configuration
(``provenance.fingerprint``). A run without an encoding is its own no-PE twin: its checkpoint is
in the twin cache (``provenance.twin``). Every problem is a ``ConfigError`` naming the file."""

from __future__ import annotations

import json
from pathlib import Path

from torch import nn

from posbench import config
from posbench.errors import ConfigError, first_line
from posbench.training.loop import load_checkpoint


def read_run(folder: Path) -> dict:
    """The ``results.json`` of the run in ``folder``, its ``config`` normalised; refused unless the
    run ended ``ok``."""
    if not folder.is_dir():
        raise ConfigError(f"{folder}: {'not a folder' if folder.exists() else 'no such folder'}")
    path = folder / "results.json"
    if not path.is_file():
        hint = "; it is a sweep folder: name one of its job folders" if (folder / "sweep.json").exists() else ""
        raise ConfigError(f"{folder} is not a run folder of posbench train (no results.json){hint}")
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ConfigError(f"{path} cannot be read: {first_line(err)}") from None
    if not isinstance(saved, dict) or not isinstance(saved.get("config"), dict) or not isinstance(saved.get("provenance"), dict):
        raise ConfigError(f"{path} is not the results of a posbench train run (no config or provenance)")
    if saved.get("status") != "ok":
        why = {"diverged": f"diverged at step {saved.get('diverged_at')}", "failed": f"failed ({saved.get('error')})"}
        raise ConfigError(f"{folder} holds a run that {why.get(saved.get('status'), 'did not end ok')}: no trained model")
    try:
        saved["config"] = config.normalise(saved["config"])
    except ConfigError as err:
        raise ConfigError(f"{path}: its configuration is not valid in this posbench version: {err}") from None
    return saved


def checkpoint_of(folder: Path, saved: dict) -> Path:
    """The checkpoint of the run in ``folder`` (``read_run``'s ``saved``): in the folder, or in the
    twin cache for a run without an encoding."""
    cfg = saved["config"]
    name = f"checkpoint_{config.run_label(cfg)}.pt"
    if not config.is_pe_free(cfg):
        return folder / name
    twin = saved["provenance"].get("twin")
    if not twin:
        raise ConfigError(f"{folder / 'results.json'} names no twin-cache folder (provenance.twin), where the checkpoint of this no-PE run is")
    return Path(twin) / name


def load_weights(model: nn.Module, checkpoint: Path, fingerprint: str | None, whose: str, remedy: str = "") -> dict:
    """Load ``checkpoint`` into ``model`` and return its content (``step``...); refuse a missing
    one, one written by another configuration (``fingerprint``), or one whose weights do not fit."""
    if not checkpoint.is_file():
        raise ConfigError(f"{whose} has no checkpoint: {checkpoint} is missing{remedy}")
    state = load_checkpoint(checkpoint)  # a damaged file: CorruptCheckpoint, a ConfigError naming it
    if state["fingerprint"] != fingerprint:
        raise ConfigError(f"{checkpoint} was written by another configuration than {whose}'s results{remedy}")
    try:
        model.load_state_dict(state["model"])
    except RuntimeError:
        raise ConfigError(f"{checkpoint}: its weights do not fit the model of {whose} (another posbench version?)") from None
    return state

"""A run's label: what sets its configuration apart from the defaults, in a few characters.

``label(cfg)`` reads a normalised configuration (``posbench.config.normalise``) against the defaults
of the config group choices it was composed from (``configs/<group>/<choice>.yaml``) and writes:

* the encoding with its non-default options, ``rope(scale=4)``; an encoding that wraps others
  always shows them (they are what it is): ``combo(learned+alibi)``, ``randomized(base=learned)``;
* then every other option that differs from its default, model, task and trainer in this order,
  by its own name (``d_model=128 train_lengths=[1,20] lr=0.01``; ``task.vocab_size=...`` when
  two sections share the name), seq2seq's ``decoder_encoding`` / ``cross_encoding`` included;
  a family's ``labelled`` options always (a captioner's ``image_encoding=sincos2d``: the label
  says which encoding each side of it has, default or not).

Options that cannot change what is learned (where and how often progress is logged or saved, the
device and thread settings, recorded in results.json) are left out. Task, model and seed are not
part of the label: they are shown beside it (``describe``, folder names), and a report groups by them.

The same label names a run everywhere: its folder (``folder_name``: sanitised, capped with a short
hash), the printed table, TensorBoard run names and HParams rows, results.json and ``posbench
report`` columns.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from pathlib import Path

import yaml

from posbench.config import NOT_SEMANTIC
from posbench.encodings import ENCODINGS
from posbench.models import MODELS
from posbench.tasks import TASKS

CONFIGS = Path(__file__).parent / "configs"
#: Trainer options that do not change the numbers a run produces (how often it logs or saves,
#: where it runs): not in the label.
NOT_IN_LABEL = ("log_every", "checkpoint_every", *NOT_SEMANTIC)
#: The longest folder name (without a sweep's job number); a longer one keeps its start and gets a
#: hash of the whole.
SLUG_MAX = 80


@functools.cache
def _defaults(group: str, choice: str) -> str:
    """The normalised defaults of ``configs/<group>/<choice>.yaml`` (JSON, so the cache stays immutable)."""
    path = CONFIGS / group / f"{choice}.yaml"
    section = yaml.safe_load(path.read_text()) if path.exists() else {"name": choice}
    registry = {"encoding": ENCODINGS, "model": MODELS, "task": TASKS}.get(group)
    if registry is not None:
        section = registry.check(section)
    return json.dumps(section)


def defaults(group: str, choice: str) -> dict:
    return json.loads(_defaults(group, choice))


def value(item) -> str:
    """An option's value as written on a command line: ``4``, ``0.01``, ``[1,20]``, ``true``,
    an encoding as its label."""
    if isinstance(item, dict) and isinstance(item.get("name"), str) and item["name"] in ENCODINGS.names():
        return encoding(item)
    if isinstance(item, bool):
        return "true" if item else "false"
    if isinstance(item, float):
        return f"{item:g}"
    if isinstance(item, (list, tuple)):
        return "[" + ",".join(value(part) for part in item) + "]"
    if isinstance(item, dict):
        return "{" + ",".join(f"{key}:{value(part)}" for key, part in item.items()) + "}"
    if item is None:
        return "null"
    return str(item)


def encoding(section) -> str:
    """``rope``, ``rope(scale=4)``, ``combo(learned+alibi)``: an encoding and its non-default options."""
    if not isinstance(section, dict) or section.get("name") not in ENCODINGS.names():
        return section if isinstance(section, str) else value(section)  # validation says what is wrong
    name = section["name"]
    cls = ENCODINGS.get(name)
    base = defaults("encoding", name)
    options = []
    for key, item in section.items():
        if key == "name":
            continue
        if key in cls.wraps:
            parts = item if isinstance(item, (list, tuple)) else [item]
            shown = "+".join(encoding(part) for part in parts)
            options.append(shown if isinstance(item, (list, tuple)) else f"{key}={shown}")
        elif item != base.get(key):
            options.append(f"{key}={value(item)}")
    return f"{name}({','.join(options)})" if options else name


def overrides(cfg: dict) -> list[str]:
    """``key=value`` for every model, task and trainer option that differs from its default, and
    for the model options its family always labels (a captioner's ``image_encoding``)."""
    changed = []
    for group in ("model", "task", "trainer"):
        base = defaults(group, cfg[group].get("name", "default"))
        always = MODELS.get(cfg[group]["name"]).labelled if group == "model" else ()
        for key, item in cfg[group].items():
            if key != "name" and key not in NOT_IN_LABEL and (item != base.get(key) or key in always):
                changed.append((group, key, item))
    names = [key for _, key, _ in changed]
    return [f"{group + '.' if names.count(key) > 1 else ''}{key}={value(item)}" for group, key, item in changed]


def label(cfg: dict) -> str:
    """The run's label: ``rope(scale=4) d_model=128``; ``none`` for the defaults without encoding."""
    return " ".join([encoding(cfg["encoding"]), *overrides(cfg)])


def slug(text: str) -> str:
    """``text`` as a file name: letters, digits and ``._=+-`` (spaces become ``_``, brackets go,
    others become ``-``: ``rope(scale=4) train_lengths=[1,20]`` → ``rope-scale=4_train_lengths=1-20``)."""
    name = text.replace(" ", "_").replace("(", "-").replace(")", "").replace("[", "").replace("]", "")
    name = re.sub(r"[^A-Za-z0-9._=+-]+", "-", name)
    return re.sub(r"-+", "-", name).strip("-_") or "run"


def cap(name: str, limit: int = SLUG_MAX) -> str:
    """``name`` if it has at most ``limit`` characters, else its start, ``-`` and 8 hex digits of
    its hash (distinct names stay distinct)."""
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: limit - 9].rstrip('-_')}-{digest}"


def folder_name(cfg: dict) -> str:
    """``rope-scale=4_copy_encoder_s0_d_model=128``: the encoding part of the label, task, model,
    seed, then the other options that differ (a sweep's jobs usually share them: they come last,
    where a name cut short on screen loses them first). A sweep puts its job number in front."""
    return _name(slug(encoding(cfg["encoding"])), cfg)


def twin_name(cfg: dict) -> str:
    """``s0_copy_encoder_d_model=128``: the name of the no-PE twin of ``cfg`` in a sweep's
    ``twins/`` folder (its seed first: the twins of a sweep differ in little else)."""
    return _name(f"s{cfg['seed']}", cfg, seed=False)


def _name(head: str, cfg: dict, seed: bool = True) -> str:
    name = f"{head}_{cfg['task']['name']}_{cfg['model']['name']}" + (f"_s{cfg['seed']}" if seed else "")
    rest = overrides(cfg)
    return cap(f"{name}_{slug(' '.join(rest))}" if rest else name)


def describe(cfg: dict) -> str:
    """``rope(scale=4) d_model=128 · copy · encoder · seed 0``: a run in one line, for people."""
    return f"{label(cfg)} · {cfg['task']['name']} · {cfg['model']['name']} · seed {cfg['seed']}"

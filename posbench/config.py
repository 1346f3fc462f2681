"""The configuration of one run (``configs/train.yaml`` composed by Hydra) and what follows from it.

* ``normalise``: every section checked against the schema of the class it configures (encoding,
  model and task classes; ``TrainerConfig``; ``RunOptions`` and ``SweepOptions`` below for the
  top-level keys) and returned with declared types and defaults: the one configuration that
  everything downstream (fingerprint, results.json) sees;
* ``build``: the task, the model (on the ``meta`` device for validation: no memory is used) and
  the trainer settings;
* ``semantic`` / ``fingerprint``: what decides a run's numbers, and its hash (checkpoints and the
  no-PE twin cache are keyed by it);
* ``no_pe_config``: the configuration of a run's no-PE twin.
"""

from __future__ import annotations

import hashlib
import json
import re
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import torch
from omegaconf import MISSING

from posbench.encodings import ENCODINGS
from posbench.errors import ConfigError
from posbench.hardware import Threads
from posbench.models import MODELS, SequenceModel
from posbench.schema import (
    Check,
    NonEmptyStr,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    Seed,
    check_section,
    options,
    show,
)
from posbench.tasks import TASKS, Task

#: The config groups (``GROUP=CHOICE`` on the command line), each one section of the configuration.
GROUPS = ("encoding", "model", "task", "trainer")


@dataclass
class RunOptions:
    """The top-level keys of ``configs/train.yaml`` besides the groups."""

    seed: Seed = MISSING
    #: Also train (or reuse) the no-PE twin and report both.
    compare_nope: bool = MISSING
    #: Folder of the shared no-PE twin cache.
    twin_cache: NonEmptyStr = MISSING
    #: Options of a multirun (``-m``), checked by ``SweepOptions``.
    sweep: Any = field(default_factory=lambda: {"skip_invalid": False})
    #: Set by an experiment (``configs/experiment/``): what its report sets beside the published
    #: result, checked by ``Reproduction``; None otherwise.
    reproduction: Any = None


@dataclass
class SweepOptions:
    """``sweep.*``: how ``posbench train -m`` treats a sweep."""

    #: false: an invalid job refuses the whole sweep before any job runs; true: invalid jobs are
    #: skipped, the others run, and the skipped ones are listed at the end.
    skip_invalid: bool = False


@dataclass
class Reproduction:
    """``reproduction.*``, written by an experiment's config (``configs/experiment/NAME.yaml`` and
    its budgets): the paper, its finding and how ``posbench report`` sets the sweep's result beside
    it (``posbench.reporting.reproduction``)."""

    #: The experiment (``experiment=NAME``).
    name: NonEmptyStr = MISSING
    #: Its scale: ``smoke`` (minutes on a laptop), ``cpu`` (about an hour on 2 cores), ``paper``.
    budget: Literal["smoke", "cpu", "paper"] = MISSING
    #: The paper, as cited.
    paper: NonEmptyStr = MISSING
    #: The published finding, in one sentence.
    finding: NonEmptyStr = MISSING
    #: How the report compares: ``mrr`` (labels ranked within each task and length beyond
    #: training, mean reciprocal rank), ``randomized_gain`` (each randomized(base) against its
    #: base beyond training), ``by_seed`` (each seed at each evaluation length), ``published``
    #: (the metric per label beside the published value).
    summary: Literal["mrr", "randomized_gain", "by_seed", "published"] = MISSING
    #: The compared metric (``acc``, ``seq_acc``, a task's own such as ``spatial_acc``).
    metric: NonEmptyStr = "acc"
    #: Score the evaluation lengths (or sizes) beyond the training range, averaged; false: the
    #: in-distribution test set.
    beyond: bool = True
    #: The published numbers per encoding label, in the metric's units (``none: 0.69``).
    published: dict[str, float] = field(default_factory=dict)
    #: What the published numbers are (``MRR, 107M-parameter decoder, 3 seeds``).
    published_as: str = ""
    #: The published claim per encoding label, in words with its paper (``alibi: Press et al.
    #: 2022: ...``), for findings that are not one number (``summary: published`` shows them).
    claims: dict[str, str] = field(default_factory=dict)


class DeviceName(Check):
    """``auto`` (CUDA when present, else CPU), ``cpu``, ``cuda`` or ``cuda:N``."""

    def __call__(self, value: str) -> str:
        if value in ("auto", "cpu", "cuda") or re.fullmatch(r"cuda:\d+", value):
            return value
        raise ValueError("must be auto, cpu, cuda or cuda:N")


@dataclass(frozen=True)
class TrainerConfig:
    """The ``trainer`` section (``configs/trainer/default.yaml``), with each key's type and range."""

    max_steps: PositiveInt = 1000
    batch_size: PositiveInt = 64
    lr: PositiveFloat = 2e-3
    weight_decay: NonNegativeFloat = 0.01
    warmup_steps: NonNegativeInt = 100
    grad_clip: PositiveFloat = 1.0
    eval_every: PositiveInt = 250
    log_every: PositiveInt = 25
    checkpoint_every: PositiveInt = 250
    device: Annotated[str, DeviceName()] = "auto"
    threads: Annotated[Any, Threads()] = "auto"
    #: At the end of a run, pictures of its encoding and its attention into TensorBoard (about 0.5 s).
    pictures: bool = True


#: Trainer options that change no number a run produces: not part of its meaning (``semantic``).
NOT_SEMANTIC = ("device", "threads", "pictures")


def normalise(cfg: dict) -> dict:
    """``cfg`` with every section checked and normalised (``ConfigError`` for anything invalid)."""
    if not isinstance(cfg, dict):
        raise ConfigError(f"the configuration must be a mapping, got {cfg!r}")
    for group in GROUPS:
        if not isinstance(cfg.get(group), dict):
            raise ConfigError(f"{group} is missing: choose one with {group}=NAME (posbench list shows them)")
    known = [*GROUPS, *RunOptions.__dataclass_fields__]
    unknown = sorted(set(cfg) - set(known))
    if unknown:
        raise ConfigError(f"unknown key {', '.join(unknown)}; the keys of posbench train are {', '.join(known)}")
    root = check_section("", RunOptions, {key: cfg[key] for key in cfg if key not in GROUPS}, skip=())
    if not isinstance(root["sweep"], dict):
        raise ConfigError(f"sweep={root['sweep']!r} must be a mapping, e.g. {{skip_invalid: true}}")
    reproduction = root["reproduction"]
    if reproduction is not None and not isinstance(reproduction, dict):
        raise ConfigError(f"reproduction={show(reproduction)} must be a mapping (an experiment's, configs/experiment/)")
    return {
        "encoding": ENCODINGS.check(cfg["encoding"]),
        "model": encodings_named(MODELS.check(cfg["model"])),
        "task": TASKS.check(cfg["task"]),
        "trainer": check_section("trainer", TrainerConfig, cfg["trainer"], skip=()),
        "seed": root["seed"],
        "compare_nope": root["compare_nope"],
        "twin_cache": root["twin_cache"],
        "sweep": check_section("sweep", SweepOptions, root["sweep"], skip=()),
        "reproduction": None if reproduction is None else check_section("reproduction", Reproduction, reproduction, skip=()),
    }


def encodings_named(section: dict) -> dict:
    """A model section whose options that hold encodings (``SequenceModel.encoding_options``) are
    each an encoding name or a mapping with a name, a bare ``{name: x}`` written ``x``, so that
    one encoding is one value for the twin check, labels and fingerprints. None is kept only where
    the option's default is None (seq2seq's ``decoder_encoding``: the same as ``encoding``)."""
    family = MODELS.get(section["name"])
    section = dict(section)
    for key in family.encoding_options:
        value = section.get(key)
        if value is None and options(family)[key].default is None:
            continue
        if isinstance(value, dict) and list(value) == ["name"]:
            value = section[key] = value["name"]
        if not isinstance(value, str) and not (isinstance(value, dict) and isinstance(value.get("name"), str)):
            raise ConfigError(
                f"model.{key}={show(value)} must be an encoding name or a mapping with a name, e.g. model.{key}=rope"
            )
    return section


def build_task(cfg: dict) -> Task:
    """The task of a normalised ``cfg``, refused (before any data is loaded) if it is not defined
    for the model family."""
    task_class, family = TASKS.get(cfg["task"]["name"]), cfg["model"]["name"]
    supported, reads = task_class.supported_models, MODELS.get(family).inputs
    if task_class.inputs != reads:
        kinds = ", ".join(name for name, cls in TASKS.items() if cls.inputs == reads)
        raise ConfigError(
            f"model={family} reads {reads} but task={cfg['task']['name']} gives {task_class.inputs}; "
            f"its tasks: {kinds}"
        )
    if supported is not None and family not in supported:
        raise ConfigError(
            f"task={cfg['task']['name']} is defined for model={' or model='.join(supported)}, not model={family}"
        )
    return TASKS.build(cfg["task"])


def build_model(cfg: dict, task: Task, *, meta: bool = False) -> SequenceModel:
    """The model of a normalised ``cfg`` for ``task``, refused if its encodings cannot represent
    the task's longest sequence. ``meta``: on the meta device (shapes without memory), to validate it."""
    with torch.device("meta") if meta else nullcontext():
        model = MODELS.build(cfg["model"], task.n_symbols, cfg["encoding"], **task.model_inputs())
    model.check_task(task)
    return model


def build(cfg: dict) -> tuple[Task, SequenceModel, TrainerConfig]:
    """Task, model and trainer settings for ``cfg``; raises ``ConfigError`` for anything invalid."""
    cfg = normalise(cfg)
    task = build_task(cfg)
    return task, build_model(cfg, task), TrainerConfig(**cfg["trainer"])


def semantic(cfg: dict, device: torch.device, threads: int, task: Task) -> dict:
    """Everything that decides a run's numbers: the encoding, model, task and trainer sections
    (but the device's name and the thread setting, replaced by what they resolve to), the seed,
    the device type, the thread count on CPU (parallel reductions round differently with another
    count) and, for a dataset-backed task, what the configuration does not show (its data)."""
    meaning = semantic_of(cfg, device.type, threads)
    data = task.data_fingerprint()
    if data is not None:
        meaning["data"] = data
    return meaning


def semantic_of(cfg: dict, device_type: str, threads: int | None) -> dict:
    """``semantic`` without the data fingerprint (which needs the task), e.g. of a recorded run."""
    trainer = {key: value for key, value in cfg["trainer"].items() if key not in NOT_SEMANTIC}
    meaning = {key: cfg[key] for key in ("encoding", "model", "task", "seed")} | {"trainer": trainer}
    meaning["device"] = device_type
    if device_type == "cpu":
        meaning["threads"] = threads
    return meaning


def fingerprint(meaning: dict) -> str:
    """A stable hash of ``semantic(...)``."""
    return hashlib.sha256(json.dumps(meaning, sort_keys=True).encode()).hexdigest()


def difference(old: dict | None, new: dict) -> str:
    """What differs between two ``semantic`` dicts, for a message: ``trainer.lr: 0.002 there, 0.01 here``."""
    if not isinstance(old, dict):
        return "written by another posbench version"
    before, after = _flat(old), _flat(new)
    keys = [key for key in sorted(set(before) | set(after)) if before.get(key) != after.get(key)]
    shown = [f"{key}: {before.get(key, 'unset')} there, {after.get(key, 'unset')} here" for key in keys[:3]]
    return "; ".join(shown) + (f"; and {len(keys) - 3} more" if len(keys) > 3 else "")


def _flat(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        flat.update(_flat(value, f"{name}.") if isinstance(value, dict) else {name: json.dumps(value)})
    return flat


def no_pe_config(cfg: dict) -> dict:
    """``cfg`` with every positional encoding switched off: its no-PE twin's configuration (the
    model family says which of its own options hold encodings, e.g. seq2seq's cross_encoding).
    The twin's encoding is NoPE's normalised section, every option at its default (plain NoPE:
    ``logn_scale`` null), so that a plain ``encoding=none`` run is its own twin."""
    model = MODELS.get(cfg["model"]["name"]).without_pe(cfg["model"])
    return {**cfg, "encoding": plain_nope(), "model": model}


def plain_nope() -> dict:
    """NoPE's normalised section with every option at its default: the twins' encoding."""
    return ENCODINGS.check({"name": "none"})


def is_pe_free(cfg: dict) -> bool:
    """Whether ``cfg`` has no positional encoding anywhere (it is its own no-PE twin)."""
    return no_pe_config(cfg) == cfg


def run_label(cfg: dict) -> str:
    """The name of a run's TensorBoard folder and checkpoint: its encoding; ``with_pe`` when that
    is ``none`` but the model places an encoding elsewhere (the twin's folder is ``none``); a
    ``none`` with options of its own (``none(logn_scale=1)``) is named by its label, ``none-logn_scale=1``."""
    name = cfg["encoding"]["name"]
    if name != "none":
        return name
    if ENCODINGS.check(cfg["encoding"]) != plain_nope():
        from posbench.labels import encoding, slug  # labels imports this module

        return slug(encoding(cfg["encoding"]))
    return name if is_pe_free(cfg) else "with_pe"

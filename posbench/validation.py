"""Everything checked before a run starts: the configuration, the machine and the disk.

``validate`` runs before Hydra creates a folder (the command line calls it for every job of a
sweep first) and again at the start of the job; it writes nothing and allocates no tensor memory:

1. the configuration: every key's declared type and range, unknown keys, and each class's own
   checks (``posbench.config.normalise`` and ``build``, the model on the ``meta`` device);
2. the machine: the device exists, and the run's memory estimate fits the device;
3. the disk: the run folder and the twin cache can be created and written, and a run folder that
   holds an earlier run (a resume) holds one of the same configuration with a readable checkpoint.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from posbench import config
from posbench.errors import ConfigError, first_line
from posbench.hardware import (
    launcher_parallelism,
    memory_bytes,
    remote_device,
    resolve_device,
    resolve_threads,
)
from posbench.models import MODELS, SequenceModel
from posbench.tasks import Task
from posbench.training.loop import load_checkpoint
from posbench.training.twin import CACHE_FORMAT

#: Bytes per parameter while training: the weight, its gradient and AdamW's two moments (float32).
TRAINING_BYTES_PER_PARAMETER = 16
#: Float32 activations kept per token and layer for the backward pass, in units of d_model
#: (q, k, v, attention output, two norms, residuals) plus 2 * ffn_mult for the feed-forward.
ACTIVATIONS_PER_TOKEN = 10
#: Sequences scored at once (``posbench.training.evaluate.score``).
EVAL_BATCH = 512


@dataclass(frozen=True)
class Slot:
    """Where a job sits in its multirun."""

    #: Its job number (from 0).
    number: int
    #: The sweep folder.
    folder: Path
    #: The jobs of the sweep (a search: its trials), for ``job k/N``; None if not known.
    jobs: int | None = None
    #: The jobs the sweeper hands the launcher at once (``posbench.sweep.concurrency``): with the
    #: launcher's own limit, what ``trainer.threads=auto`` divides the CPUs by.
    at_once: int | None = None


@dataclass(frozen=True)
class Job:
    """A validated run: the normalised configuration and what it resolves to on this machine."""

    cfg: dict
    run_dir: Path
    task: Task
    device: torch.device
    threads: int
    semantic: dict
    fingerprint: str
    parameters: dict
    #: The ``semantic`` configuration of the run's no-PE twin (None when the run needs no twin).
    twin_semantic: dict | None
    #: The results.json of this configuration that ``run_dir`` already holds (None: none yet).
    earlier: dict | None = None

    @property
    def twin_dir(self) -> Path | None:
        """The twin's cache entry: ``<twin_cache>/<16 digits of the fingerprint of its configuration
        and the entry's format>`` (``CACHE_FORMAT``)."""
        if self.twin_semantic is None:
            return None
        return Path(self.cfg["twin_cache"]) / config.fingerprint({**self.twin_semantic, "cache_format": CACHE_FORMAT})[:16]


def validate(cfg: dict, run_dir: Path, launcher: dict | None = None, slot: Slot | None = None) -> Job:
    """Check ``cfg`` for a run in ``run_dir``; ``launcher`` (Hydra's launcher settings) and
    ``slot`` (where the job sits in its sweep) decide what ``trainer.threads=auto`` means and
    which GPU ``trainer.device=auto`` takes.
    Raises ``ConfigError`` with one line for the first problem; the cheap checks come first, the
    task (which may load a dataset) after them."""
    cfg = config.normalise(cfg)
    at_once = None if slot is None else slot.at_once
    gpu_slot = slot.number if slot is not None and launcher_parallelism(launcher, at_once) > 1 else None
    elsewhere = remote_device(launcher) if cfg["trainer"]["device"] == "auto" else None
    device = torch.device(elsewhere) if elsewhere else resolve_device(cfg["trainer"]["device"], gpu_slot)
    threads = resolve_threads(cfg["trainer"]["threads"], launcher, at_once)
    check_folder("hydra.run.dir", run_dir)
    check_folder("twin_cache", Path(cfg["twin_cache"]))
    available = None if elsewhere else memory_bytes(device)  # another machine's memory is not known here
    task = config.build_task(cfg)
    check_memory(cfg, task, rough_parameters(cfg, task), 0, device, available)
    try:
        model = config.build_model(cfg, task, meta=True)
    except (RuntimeError, OverflowError) as err:  # sizes beyond what torch can even describe
        raise ConfigError(f"the model cannot be built with these sizes: {first_line(err)}") from None
    parameters = parameter_counts(model)
    pair_bytes = max(stack.encoding.pair_bytes() for stack in model.stacks())
    check_memory(cfg, task, parameters["total"], pair_bytes, device, available)
    meaning = config.semantic(cfg, device, threads, task)
    needs_twin = cfg["compare_nope"] or config.is_pe_free(cfg)
    twin_meaning = config.semantic(config.no_pe_config(cfg), device, threads, task) if needs_twin else None
    job = Job(cfg, run_dir, task, device, threads, meaning, config.fingerprint(meaning), parameters, twin_meaning)
    if job.twin_dir is not None:
        check_twin_entry(job.twin_dir)
    return replace(job, earlier=check_earlier_run(job))


# ---- memory ------------------------------------------------------------------------------------
def parameter_counts(model: SequenceModel) -> dict:
    """Parameters of the whole model and of its encodings (every stack's)."""
    return {
        "total": sum(p.numel() for p in model.parameters()),
        "encoding": sum(p.numel() for p in model.encoding_parameters()),
    }


def rough_parameters(cfg: dict, task: Task) -> int:
    """The network's parameters from its sizes alone (no encoding), to refuse absurd sizes before
    anything is built: embeddings and output layer, attention and feed-forward per layer of every
    stack, and an image stem's weights."""
    model = cfg["model"]
    family = MODELS.get(model["name"])
    d, ffn, length = model["d_model"], model["ffn_mult"], task.train_lengths[1]
    layers = sum(depth for _, depth in family.stacks_of(model, task.source_len(length), task.target_len(length)))
    stem = family.stem_cost(model, getattr(task, "channels", 0), length)[2]
    return layers * d * d * (4 + 2 * ffn) + 2 * (task.n_symbols + 2) * d + stem


def memory_estimate(cfg: dict, task: Task, parameters: int, pair_bytes: int) -> dict[str, int]:
    """Rough peak bytes of the things a run holds at once, by what decides each: the parameters
    with their optimizer state, the training activations of one batch (every stack the family runs
    an example through, and an image stem), the evaluation sets (stored whole) plus one scored
    batch, and a dataset the task keeps on the device. ``pair_bytes``: what an attention layer keeps
    per head and (query, key) pair beyond the fused path (``PositionalEncoding.pair_bytes``: logits
    on the explicit path, a data-dependent bias, an MLP over the pairs), quadratic in the length."""
    model, trainer = cfg["model"], cfg["trainer"]
    d, heads = model["d_model"], model["heads"]
    family = MODELS.get(model["name"])

    def activations(batch: int, length: int, backward: bool) -> int:
        total = 0
        for tokens, layers in family.stacks_of(model, task.source_len(length), task.target_len(length)):
            per_layer = batch * tokens * d * (ACTIVATIONS_PER_TOKEN + 2 * model["ffn_mult"]) * 4
            per_layer += batch * heads * tokens**2 * pair_bytes
            total += per_layer * (layers if backward else 1)
        saved, peak, _ = family.stem_cost(model, getattr(task, "channels", 0), task.source_len(length))
        return total + batch * (saved if backward else peak) * 4

    longest_train, longest = task.train_lengths[1], task.longest()
    stored = task.eval_size * (task.example_bytes(longest_train) + sum(task.example_bytes(n) for n in task.eval_lengths))
    return {
        "parameters and optimizer state (model.d_model, model.layers, encoding sizes)": parameters
        * TRAINING_BYTES_PER_PARAMETER,
        "training activations (trainer.batch_size, task.train_lengths, model.d_model)": activations(
            trainer["batch_size"], longest_train, backward=True
        ),
        "evaluation sets (task.eval_size, task.eval_lengths)": stored
        + activations(min(task.eval_size, EVAL_BATCH), longest, backward=False),
        "the dataset held on the device (task.dataset, task.image_size)": task.held_bytes(),
    }


def check_memory(
    cfg: dict, task: Task, parameters: int, pair_bytes: int, device: torch.device, available: int | None
) -> None:
    """Refuse a run whose memory estimate exceeds what the device has."""
    if available is None:
        return
    parts = memory_estimate(cfg, task, parameters, pair_bytes)
    if sum(parts.values()) > available:
        largest = max(parts, key=parts.get)
        raise ConfigError(
            f"this run needs about {_size(sum(parts.values()))} of memory, mostly for {largest}, "
            f"but the {device.type} has {_size(available)}; reduce those sizes"
        )


def _size(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if count < 1024 or unit == "PiB":
            return f"{count:.3g} {unit}"
        count /= 1024
    raise AssertionError


# ---- disk --------------------------------------------------------------------------------------
def check_folder(key: str, path: Path) -> None:
    """``path`` is a folder that exists and is writable, or can be created in one that is."""
    if not str(path):
        raise ConfigError(f"{key} is empty: give a folder")
    existing = path.absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"{key}={path} cannot be a folder: {existing} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"{key}={path} is not writable: {existing} does not allow writing (or is read-only)")


def check_twin_entry(entry: Path) -> None:
    """The twin's cache entry, if it exists (another run trained or began it), can be written,
    and so can its lock. A damaged entry is not refused: the twin cache discards and retrains it."""
    lock = entry.with_name(f"{entry.name}.lock")
    for path in (entry, lock):
        if path.exists() and not os.access(path, os.W_OK | (os.X_OK if path.is_dir() else 0)):
            raise ConfigError(
                f"the no-PE twin's cache entry {path} is not writable; fix its permissions or set another twin_cache"
            )


def check_earlier_run(job: Job) -> dict | None:
    """A run folder that already holds a run must hold this configuration's (then the run resumes
    or is re-evaluated), with a checkpoint that loads; anything else is refused with the remedy.
    Returns the results.json the folder holds, if any."""
    if not job.run_dir.is_dir():
        return None
    checkpoint = job.run_dir / f"checkpoint_{config.run_label(job.cfg)}.pt"
    if checkpoint.exists():
        state = load_checkpoint(checkpoint)  # a damaged one: CorruptCheckpoint, a ConfigError naming the file
        if state["fingerprint"] != job.fingerprint:
            raise ConfigError(
                f"{job.run_dir} holds a run of another configuration "
                f"({config.difference(state['semantic'], job.semantic) or 'other data'}); "
                "use a new hydra.run.dir"
            )
    results = job.run_dir / "results.json"
    if results.exists():
        try:
            earlier = json.loads(results.read_text())
            recorded = earlier["provenance"]["fingerprint"]
            there = config.semantic_of(earlier["config"], earlier["device"], earlier["provenance"]["threads"])
        except (ValueError, KeyError, TypeError, OSError, AttributeError):
            raise ConfigError(
                f"{results} is not the results of a run of this posbench version; move it away or use a new hydra.run.dir"
            ) from None
        if recorded != job.fingerprint:
            here = config.semantic_of(job.cfg, job.device.type, job.threads)
            raise ConfigError(
                f"{job.run_dir} holds the results of another configuration "
                f"({config.difference(there, here) or 'other data'}); use a new hydra.run.dir"
            )
        return earlier
    return None

"""One run, end to end: validate, train the model, evaluate it (with its encoding on and switched
off), fetch or train its no-PE twin, and write ``results.json``.

Everything that can be wrong with a configuration is refused by ``posbench.validation`` before
anything is written; the command line runs the same check before Hydra creates the run folder.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch
from torch.utils.tensorboard import SummaryWriter

from posbench import results, scales
from posbench.config import (
    TrainerConfig,
    build_model,
    fingerprint,
    is_pe_free,
    no_pe_config,
    run_label,
)
from posbench.labels import label
from posbench.tasks import Task
from posbench.tensorboard_log import link_twin, log_result
from posbench.training.evaluate import evaluate, evaluate_pe_off
from posbench.training.files import write_json
from posbench.training.loop import Diverged, fit
from posbench.training.twin import twin_outcome
from posbench.validation import Job, Slot, validate

log = logging.getLogger(__name__)


def train_and_evaluate(cfg: dict, task: Task, device: torch.device, out_dir: Path, meaning: dict, desc: str) -> dict:
    """Train the model of the normalised ``cfg`` on ``task`` into ``out_dir`` and return its
    outcome: status, metrics, per-length metrics, ``pe_off`` and ``pe_off_lengths`` (``meaning``:
    its ``semantic`` configuration, kept in checkpoints; ``desc``: what its progress lines start
    with). Training curves go to ``events_dir(out_dir, cfg)``."""
    torch.manual_seed(cfg["seed"])
    model = build_model(cfg, task).to(device)
    trainer = TrainerConfig(**cfg["trainer"])
    name = run_label(cfg)
    test_set = task.test_set(device)
    with SummaryWriter(str(events_dir(out_dir, cfg))) as writer:
        try:
            fit(
                model, task, test_set, trainer, cfg["seed"], device, writer,
                checkpoint=out_dir / f"checkpoint_{name}.pt", label=name, fingerprint=fingerprint(meaning),
                semantic=meaning, desc=desc,
            )
        except Diverged as stop:
            return results.outcome_of_divergence(stop.step)
    length_sets = task.length_sets(device)
    outcome = {"status": "ok", **evaluate(model, task, test_set, length_sets, desc=desc)}
    outcome |= {"pe_off": None, scales.pe_off_key(task.axis): None}
    if not is_pe_free(cfg):
        outcome |= evaluate_pe_off(model, task, test_set, length_sets, desc)
    if trainer.pictures:
        end_of_run_pictures(model, cfg, task, test_set, out_dir, trainer.max_steps)
    return outcome


def events_dir(out_dir: Path, cfg: dict) -> Path:
    """A run's TensorBoard folder: ``tb/<encoding>`` (``tb/with_pe`` for ``encoding=none`` with an
    encoding elsewhere; the twin's: ``tb/none``), short beside the run folder's name, which holds the label."""
    return out_dir / "tb" / run_label(cfg)


def end_of_run_pictures(model, cfg: dict, task: Task, test_set, out_dir: Path, step: int) -> None:
    """In the run's TensorBoard events: its attention on one test example of the longest training
    length (``attention/...``)
    and, unless it has no encoding, a few pictures of the trained encoding (``encoding/...``,
    ``posbench.plotting``). The run's numbers are computed by then, so a failure to draw is logged
    with its traceback (a bug to report) and does not fail the run."""
    try:
        from posbench.plotting import add_attention_to_tensorboard, add_to_tensorboard

        with SummaryWriter(str(events_dir(out_dir, cfg))) as writer:
            add_attention_to_tensorboard(writer, model, cfg, test_set[-1], step)
            if not is_pe_free(cfg):
                add_to_tensorboard(writer, model, cfg, task, step)
    except Exception:
        log.warning("posbench: could not draw the encoding's pictures for TensorBoard (a bug: please report it)", exc_info=True)


def no_pe_twin(job: Job, desc: str, sweep_dir: Path | None = None) -> dict:
    """The outcome of the job's configuration with every encoding off, trained once per
    configuration and cached in ``job.twin_dir``; its TensorBoard events are linked into the
    sweep once, or into a single run's folder (``posbench.tensorboard_log.link_twin``)."""
    twin_cfg = no_pe_config(job.cfg)

    def train(folder: Path) -> dict:
        outcome = train_and_evaluate(twin_cfg, job.task, job.device, folder, job.twin_semantic, desc)
        log_result(events_dir(folder, twin_cfg), twin_cfg, outcome, twin_cfg["trainer"]["max_steps"])
        return outcome

    outcome = twin_outcome(job.twin_dir, train)
    link_twin(events_dir(job.twin_dir, twin_cfg), twin_cfg, job.run_dir, sweep_dir)
    return outcome


def run(cfg: dict, run_dir: Path, launcher: dict | None = None, slot: Slot | None = None) -> dict:
    """The ``posbench train`` job: returns (and atomically writes) the ``results.json`` content.

    ``cfg`` is validated first (``ConfigError``, nothing written; ``launcher`` and ``slot``, where
    the job sits in its sweep, decide ``trainer.threads=auto``, see ``posbench.hardware``; the
    twin's TensorBoard events are linked into the sweep's folder).
    A run with ``encoding=none`` *is* a twin: it goes through the same cache, so a sweep that
    contains ``none`` never trains the same no-PE model twice. A run whose training diverges is a result (``status: diverged``);
    any other error after validation writes ``status: failed`` and is raised again.
    """
    started = time.time()
    job = validate(cfg, run_dir, launcher, slot)
    torch.set_num_threads(job.threads)
    twin_dir = None
    try:
        job.task.save(run_dir)
        nope = None
        desc = label(job.cfg) if slot is None else f"job {slot.number + 1}/{slot.jobs or '?'} {label(job.cfg)}"
        sweep_dir = None if slot is None else slot.folder
        if is_pe_free(job.cfg):
            outcome, twin_dir = no_pe_twin(job, desc, sweep_dir), job.twin_dir
        else:
            outcome = train_and_evaluate(job.cfg, job.task, job.device, run_dir, job.semantic, desc)
            if job.cfg["compare_nope"] and outcome["status"] == "ok":
                nope = results.twin_summary(no_pe_twin(job, f"{desc}: no-PE twin", sweep_dir))
                twin_dir = job.twin_dir
            log_result(events_dir(run_dir, job.cfg), job.cfg, outcome, job.cfg["trainer"]["max_steps"], nope)
        content = results.assemble(job, outcome, nope, results.provenance(job, started, time.time(), twin_dir))
    except Exception as error:
        write_json(run_dir / "results.json", results.failed(job, error, results.provenance(job, started, time.time(), twin_dir)))
        raise
    write_json(run_dir / "results.json", content)
    return content

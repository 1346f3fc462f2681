"""One run, end to end: validate, train the model, evaluate it (with its encoding on and switched
off), fetch or train its no-PE twin, and write ``results.json``.

Everything that can be wrong with a configuration is refused by ``posbench.validation`` before
anything is written; the command line runs the same check before Hydra creates the run folder.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import torch
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams

from posbench import results
from posbench.config import TrainerConfig, build_model, fingerprint, is_pe_free, no_pe_config, run_label
from posbench.tasks import Task
from posbench.training.evaluate import evaluate, score
from posbench.training.files import write_json
from posbench.training.loop import Diverged, fit
from posbench.training.twin import twin_outcome
from posbench.validation import Job, validate


def train_and_evaluate(cfg: dict, task: Task, device: torch.device, out_dir: Path, meaning: dict) -> dict:
    """Train the model of the normalised ``cfg`` on ``task`` into ``out_dir`` and return its
    outcome: status, metrics, per-length metrics and ``pe_off`` (``meaning``: its ``semantic``
    configuration, kept in checkpoints)."""
    torch.manual_seed(cfg["seed"])
    model = build_model(cfg, task).to(device)
    trainer = TrainerConfig(**cfg["trainer"])
    name = run_label(cfg)
    writer = SummaryWriter(str(out_dir / "tb" / name))
    test_set = task.test_set(device)
    try:
        fit(
            model, task, test_set, trainer, cfg["seed"], device, writer,
            checkpoint=out_dir / f"checkpoint_{name}.pt", label=name, fingerprint=fingerprint(meaning), semantic=meaning,
        )
    except Diverged as stop:
        writer.close()
        return results.outcome_of_divergence(stop.step)
    outcome = {"status": "ok", **evaluate(model, task, test_set, task.length_sets(device))}
    outcome["pe_off"] = None
    if not is_pe_free(cfg):
        with model.encoding_off():
            outcome["pe_off"] = score(model, test_set, task)
    _log_final(writer, cfg, outcome, trainer.max_steps)
    writer.close()
    return outcome


def _log_final(writer: SummaryWriter, cfg: dict, outcome: dict, step: int) -> None:
    """Per-length scalars plus one HParams row, written into the run's own event file."""
    for length, metrics in outcome["lengths"].items():
        for key, value in metrics.items():
            writer.add_scalar(f"len/{length}/{key}", value, step)
    longest = max(outcome["lengths"], key=int)
    metric_dict = {
        "hparam/acc": outcome["metrics"]["acc"],
        "hparam/seq_acc": outcome["metrics"]["seq_acc"],
        "hparam/acc_longest": outcome["lengths"][longest]["acc"],
    } | {f"hparam/{key}": value for key, value in outcome["metrics"].items() if key not in ("acc", "seq_acc")}
    model, trainer = cfg["model"], cfg["trainer"]
    hparam_dict = {
        "encoding": cfg["encoding"]["name"], "task": cfg["task"]["name"], "model": model["name"],
        "seed": cfg["seed"], "d_model": model["d_model"], "layers": model["layers"],
        "heads": model["heads"], "max_steps": trainer["max_steps"], "lr": trainer["lr"],
        "batch_size": trainer["batch_size"],
    }
    file_writer = writer._get_file_writer()
    for summary in hparams(hparam_dict, metric_dict):
        file_writer.add_summary(summary)
    for tag, value in metric_dict.items():
        writer.add_scalar(tag, value, step)


def no_pe_twin(job: Job) -> dict:
    """The outcome of the job's configuration with every encoding off, trained once per
    configuration and cached in ``job.twin_dir``.

    A copy of the twin's event file goes into ``run_dir/tb/none`` so that
    ``tensorboard --logdir <run dir>`` shows the run and its twin side by side.
    """
    twin_cfg = no_pe_config(job.cfg)
    outcome = twin_outcome(
        job.twin_dir, lambda out_dir: train_and_evaluate(twin_cfg, job.task, job.device, out_dir, job.twin_semantic)
    )
    events = job.twin_dir / "tb" / "none"
    if events.is_dir():
        shutil.copytree(events, job.run_dir / "tb" / "none", dirs_exist_ok=True)
    return outcome


def run(cfg: dict, run_dir: Path, launcher: dict | None = None, sweep_jobs: int | None = None) -> dict:
    """The ``posbench train`` job: returns (and atomically writes) the ``results.json`` content.

    ``cfg`` is validated first (``ConfigError``, nothing written; ``launcher`` and ``sweep_jobs``
    decide ``trainer.threads=auto``, see ``posbench.hardware``). A run with ``encoding=none``
    *is* a twin: it goes through the same cache, so a sweep that contains ``none`` never trains
    the same no-PE model twice. A run whose training diverges is a result (``status: diverged``);
    any other error after validation writes ``status: failed`` and is raised again.
    """
    started = time.time()
    job = validate(cfg, run_dir, launcher, sweep_jobs)
    torch.set_num_threads(job.threads)
    twin_dir = None
    try:
        job.task.save(run_dir)
        nope = None
        if is_pe_free(job.cfg):
            outcome, twin_dir = no_pe_twin(job), job.twin_dir
        else:
            outcome = train_and_evaluate(job.cfg, job.task, job.device, run_dir, job.semantic)
            if job.cfg["compare_nope"] and outcome["status"] == "ok":
                nope, twin_dir = results.twin_summary(no_pe_twin(job)), job.twin_dir
        content = results.assemble(job, outcome, nope, results.provenance(job, started, time.time(), twin_dir))
    except Exception as error:
        write_json(run_dir / "results.json", results.failed(job, error, results.provenance(job, started, time.time(), twin_dir)))
        raise
    write_json(run_dir / "results.json", content)
    return content

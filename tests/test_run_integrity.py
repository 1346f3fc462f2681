"""What a run leaves behind can be trusted: divergence is recorded as such, a damaged twin-cache
entry is retrained (never a traceback after training), results.json says under which conditions
its numbers were obtained (versions, device, threads, time, sizes), files are readable by
collaborators, per-length keys are in numeric order, and ``trainer.threads`` is applied and keys
the CPU twin."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from unittest import mock

import pytest
import torch

import posbench
from conftest import TINY, compose
from posbench import config, experiment, hardware, validation
from posbench.errors import ConfigError
from posbench.training import loop


# ---- divergence ---------------------------------------------------------------------------------
def test_divergence_stops_the_run_at_once_and_reports_no_accuracy(tiny_cfg, tmp_path, monkeypatch):
    updates = {"n": 0}
    real_step = torch.optim.AdamW.step

    def counting_step(self, *args, **kwargs):
        updates["n"] += 1
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", counting_step)
    results = experiment.run(tiny_cfg("trainer.lr=1e30", "trainer.max_steps=50"), tmp_path / "run")
    assert results["status"] == "diverged" and 1 <= results["diverged_at"] < 50
    assert updates["n"] == results["diverged_at"] - 1  # the step with a non-finite loss makes no update
    assert results["metrics"] is None and results["lengths"] is None and results["pe_off"] is None
    assert results["nope"] is None  # a diverged run has nothing to compare with its twin
    assert json.loads((tmp_path / "run" / "results.json").read_text())["status"] == "diverged"


def test_a_finished_run_has_status_ok(tiny_cfg, tmp_path):
    results = experiment.run(tiny_cfg("encoding=rope"), tmp_path / "run")
    assert results["status"] == "ok" and results["nope"]["status"] == "ok" and results["diverged_at"] is None


# ---- the twin cache -----------------------------------------------------------------------------
def damage_outcome_truncated(entry: Path):
    text = (entry / "outcome.json").read_text()
    (entry / "outcome.json").write_text(text[: len(text) // 2])


def damage_outcome_empty(entry: Path):
    (entry / "outcome.json").write_text("")


def damage_outcome_incomplete(entry: Path):
    (entry / "outcome.json").write_text(json.dumps({"metrics": {"acc": 1.0}}))  # no status: another version


def damage_outcome_without_numbers(entry: Path):
    (entry / "outcome.json").write_text(json.dumps({"status": "ok", "metrics": None, "lengths": {}, "pe_off": None}))


def damage_checkpoint_garbage(entry: Path):
    (entry / "outcome.json").unlink()  # as after an interruption: training resumes from the checkpoint
    (entry / "checkpoint_none.pt").write_bytes(os.urandom(512))


def damage_entry_replaced_by_a_file(entry: Path):
    for path in sorted(entry.rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    entry.rmdir()
    entry.write_text("not an entry")


@pytest.mark.parametrize(
    "damage",
    [damage_outcome_truncated, damage_outcome_empty, damage_outcome_incomplete, damage_outcome_without_numbers,
     damage_checkpoint_garbage, damage_entry_replaced_by_a_file],
    ids=lambda f: f.__name__.removeprefix("damage_"),
)
def test_a_damaged_twin_entry_is_discarded_and_trained_again(damage, tiny_cfg, tmp_path, caplog):
    first = experiment.run(tiny_cfg("encoding=rope"), tmp_path / "first")
    entry = Path(first["provenance"]["twin"])
    damage(entry)
    with caplog.at_level("WARNING"):
        second = experiment.run(tiny_cfg("encoding=alibi"), tmp_path / "second")
    assert f"discarding {entry}" in caplog.text
    assert second["status"] == "ok" and second["nope"] == first["nope"]  # retrained: the same numbers
    assert json.loads((entry / "outcome.json").read_text())["status"] == "ok"


def test_an_unwritable_twin_cache_is_refused_before_training(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="twin_cache=.*cannot be a folder"):
        experiment.run(compose([*TINY, "encoding=rope"], tmp_path / "file" / "twins"), tmp_path / "run")
    assert not (tmp_path / "run").exists()


# ---- provenance, files ------------------------------------------------------------------------------
def test_results_record_the_conditions_of_the_run(tiny_cfg, tmp_path):
    results = experiment.run(tiny_cfg("encoding=learned", "encoding.max_len=64"), tmp_path / "run")
    prov = results["provenance"]
    assert prov["posbench"] == posbench.__version__ and prov["torch"] == torch.__version__
    assert prov["device_name"] and prov["threads"] == hardware.resolve_threads("auto") == torch.get_num_threads()
    assert prov["wall_time_s"] > 0 and re.fullmatch(r"\d{4}-\d\d-\d\dT.*", prov["started"])
    assert prov["parameters"]["encoding"] == 64 * 32  # the learned table: max_len x d_model
    assert prov["parameters"]["total"] > prov["parameters"]["encoding"]
    assert Path(prov["twin"]).is_dir() and (Path(prov["twin"]) / "outcome.json").exists()
    assert re.fullmatch(r"[0-9a-f]{64}", prov["fingerprint"])
    if (Path(posbench.__file__).parents[1] / ".git").exists():  # an editable install from a checkout
        assert re.fullmatch(r"[0-9a-f]{40}", prov["git_commit"]) and isinstance(prov["git_dirty"], bool)


def test_per_length_keys_are_in_numeric_order(tiny_cfg, tmp_path):
    experiment.run(tiny_cfg("encoding=rope", "task.eval_lengths=[10,3,25,5]"), tmp_path / "run")
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert list(saved["lengths"]) == ["3", "5", "10", "25"]
    assert list(saved["nope"]["lengths"]) == ["3", "5", "10", "25"]


def test_files_follow_the_umask(tiny_cfg, tmp_path):
    old = os.umask(0o027)
    try:
        experiment.run(tiny_cfg("encoding=rope"), tmp_path / "run")
    finally:
        os.umask(old)
    for name in ("results.json", "checkpoint_rope.pt"):
        assert (tmp_path / "run" / name).stat().st_mode & 0o777 == 0o640


# ---- threads ----------------------------------------------------------------------------------------
def test_auto_threads_follow_the_cpus_and_the_launcher(monkeypatch):
    monkeypatch.setattr(hardware, "usable_cpus", lambda: 8)
    assert hardware.resolve_threads("auto") == 8
    assert hardware.resolve_threads(3) == 3
    joblib = {"_target_": "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher", "n_jobs": 4}
    assert hardware.resolve_threads("auto", joblib) == 2
    assert hardware.resolve_threads("auto", {**joblib, "n_jobs": -1}) == 1
    local = {"_target_": "hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher"}
    assert hardware.resolve_threads("auto", local, at_once=3) == 2  # submitit_local starts every job at once
    assert hardware.resolve_threads("auto", local, at_once=20) == 1
    assert hardware.resolve_threads("auto", {**local, "cpus_per_task": 5}) == 5


def test_parallel_jobs_spread_over_the_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert [str(hardware.resolve_device("auto", slot)) for slot in range(4)] == ["cuda:0", "cuda:1", "cuda:0", "cuda:1"]
    assert str(hardware.resolve_device("auto")) == "cuda"  # one job at a time: CUDA's current device
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert str(hardware.resolve_device("auto", 3)) == "cuda"


def test_usable_cpus_honour_slurm_and_the_affinity_mask(monkeypatch):
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "3")
    assert hardware.usable_cpus() == 3
    monkeypatch.delenv("SLURM_CPUS_PER_TASK")
    assert hardware.usable_cpus() == len(os.sched_getaffinity(0))


def test_threads_are_applied_recorded_and_key_the_cpu_twin(tiny_cfg, tmp_path):
    one = experiment.run(tiny_cfg("encoding=rope", "trainer.threads=1"), tmp_path / "one")
    assert one["provenance"]["threads"] == 1 and torch.get_num_threads() == 1
    two = experiment.run(tiny_cfg("encoding=rope", "trainer.threads=2"), tmp_path / "two")
    assert two["provenance"]["threads"] == 2 and torch.get_num_threads() == 2
    assert one["provenance"]["twin"] != two["provenance"]["twin"]
    cfg = config.normalise(tiny_cfg())
    task = config.build_task(cfg)
    cuda = [config.semantic(cfg, torch.device("cuda"), threads, task) for threads in (1, 2)]
    assert cuda[0] == cuda[1] and "threads" not in cuda[0]  # on a GPU the CPU thread count is not part of the key


# ---- the memory estimate ------------------------------------------------------------------------
def test_the_memory_estimate_refuses_only_what_cannot_fit(tmp_path):
    """A long evaluation through fused attention needs no quadratic memory and is accepted; the same
    lengths through the explicit path (Shaw) would materialise hundreds of GiB and are refused."""
    long = ["model=decoder", "task.eval_lengths=[4000]", "task.eval_size=256", "trainer.device=cpu"]
    validation.validate(compose([*long, "encoding=alibi"], tmp_path / "twins"), tmp_path / "run")
    with pytest.raises(ConfigError, match="mostly for evaluation sets"):
        validation.validate(compose([*long, "encoding=shaw"], tmp_path / "twins"), tmp_path / "run")
    # what an encoding keeps per pair counts: DAPE's MLP over the pairs needs ten times Shaw's logits
    # (length 300: about 3.5 GiB with Shaw, 30 GiB with DAPE; a machine of 8 GiB)
    medium = ["model=decoder", "task.eval_lengths=[300]", "task.eval_size=256", "trainer.device=cpu"]
    with mock.patch.object(validation, "memory_bytes", lambda device: 8 * 2**30):
        validation.validate(compose([*medium, "encoding=shaw"], tmp_path / "twins"), tmp_path / "run")
        with pytest.raises(ConfigError, match="mostly for evaluation sets"):
            validation.validate(compose([*medium, "encoding=dape"], tmp_path / "twins"), tmp_path / "run")
    cfg = config.normalise(compose(TINY, tmp_path / "twins"))
    parts = validation.memory_estimate(cfg, config.build_task(cfg), 10**6, pair_bytes=0)
    assert sum(parts.values()) < 2**30  # the test runs need far less than a GiB


def test_a_checkpoint_loads_without_running_code(tiny_cfg, tmp_path):
    experiment.run(tiny_cfg("encoding=rope", "compare_nope=false"), tmp_path / "run")
    state = torch.load(tmp_path / "run" / "checkpoint_rope.pt", weights_only=True)
    assert set(loop.CHECKPOINT_KEYS) <= set(state) and state["step"] == 12


def test_a_slurm_sweep_is_checked_as_its_jobs_will_run(tiny_cfg, tmp_path):
    """On a login node without a GPU, a Slurm job asking for one is validated (and fingerprinted)
    on cuda, so that a resumed sweep finds its jobs' results; CPU jobs take cpus_per_task threads."""
    slurm = {"_target_": "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher", "cpus_per_task": 3}
    slot = validation.Slot(0, tmp_path)
    cfg = tiny_cfg("encoding=rope")
    cfg["trainer"]["device"] = "auto"
    gpu = validation.validate(cfg, tmp_path / "a", {**slurm, "gpus_per_node": 1}, slot)
    assert gpu.device.type == "cuda" and gpu.semantic["device"] == "cuda" and "threads" not in gpu.semantic
    cpu = validation.validate(cfg, tmp_path / "b", {**slurm, "gpus_per_node": 0}, slot)
    assert cpu.device.type == "cpu" and cpu.threads == 3 and cpu.semantic["threads"] == 3


def test_threads_follow_the_jobs_the_sweeper_hands_out_at_once(monkeypatch):
    from omegaconf import OmegaConf

    from posbench.sweep import concurrency

    monkeypatch.setattr(hardware, "usable_cpus", lambda: 16)
    local = {"_target_": "hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher"}
    batched = concurrency(OmegaConf.create({"max_batch_size": 4, "jobs": 12}), 12)
    assert batched == 4 and hardware.resolve_threads("auto", local, batched) == 4
    assert concurrency(OmegaConf.create({"max_batch_size": None}), 12) == 12
    assert concurrency(OmegaConf.create({"n_jobs": 2, "n_trials": 20}), 20) == 2  # an Optuna search
    joblib = {"_target_": "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher", "n_jobs": -1}
    assert hardware.resolve_threads("auto", joblib, 2) == 8

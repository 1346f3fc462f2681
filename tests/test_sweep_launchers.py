"""A small multirun end to end, as a user runs it, with each launcher of the ``sweep`` extra: every
job's results, the report printed at the end and written beside the sweep, threads per job, a
resumed sweep that runs only what is missing, and an Optuna learning-rate search."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest
from conftest import TINY


def posbench(cwd, *args):
    return subprocess.run(
        [sys.executable, "-m", "posbench", "train", *args], cwd=cwd, capture_output=True, text=True, timeout=900,
        env={**os.environ, "HYDRA_FULL_ERROR": "0"},
    )


def jobs(sweep_dir) -> dict:
    """``{job folder: results.json}``."""
    return {p.parent.name: json.loads(p.read_text()) for p in sweep_dir.glob("*/results.json")}


def the_sweep(tmp_path):
    (sweep_dir,) = (tmp_path / "outputs" / "sweeps").glob("*/*")
    return sweep_dir


@pytest.mark.parametrize(
    "launcher, plugin",
    [("basic", None), ("joblib", "hydra_plugins.hydra_joblib_launcher"), ("submitit_local", "hydra_plugins.hydra_submitit_launcher")],
)
def test_a_multirun_on_each_launcher_ends_with_one_report(tmp_path, monkeypatch, launcher, plugin):
    if plugin is not None:
        pytest.importorskip(plugin)
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("the thread split is checked on a machine with 2 CPUs or more")
    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    out = posbench(tmp_path, "-m", f"hydra/launcher={launcher}", "encoding=none,rope", "seed=0,1", *TINY)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Warning" not in out.stderr, out.stderr  # e.g. Hydra's on the launchers' schema matching
    sweep_dir = the_sweep(tmp_path)
    found = jobs(sweep_dir)
    assert sorted(name.split("_")[0] + "_" + name.split("_")[1] for name in found) == ["0_none", "1_none", "2_rope", "3_rope"]
    assert all(r["status"] == "ok" for r in found.values())
    # jobs side by side share the CPUs (2 or more jobs at once: 1 thread each on 2 CPUs); one at a time: all of them
    cpus = len(os.sched_getaffinity(0))
    expected = cpus if launcher == "basic" else max(1, cpus // min(cpus, 4))
    assert {r["provenance"]["threads"] for r in found.values()} == {expected}
    # one report at the end, not a table per job
    assert out.stdout.count("# posbench report") == 1 and out.stdout.count("## Ranking") == 1
    assert "4 runs (4 ok) over 2 seeds" in out.stdout
    with open(sweep_dir / "report.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(row["label"].split(" ")[0] for row in rows) == ["none", "rope"]
    rope = next(row for row in rows if row["label"].startswith("rope"))
    seeds = [r["metrics"]["acc"] for r in found.values() if r["encoding"] == "rope"]
    assert rope["n"] == "2" and abs(float(rope["mean"]) - sum(seeds) / 2) < 1e-9
    assert (sweep_dir / "acc_vs_length_copy_encoder.png").stat().st_size > 1000


def test_a_sweep_launched_again_runs_only_what_is_missing(tmp_path):
    args = ["-m", "encoding=none,rope,alibi", *TINY]
    assert posbench(tmp_path, *args).returncode == 0
    sweep_dir = the_sweep(tmp_path)
    first = jobs(sweep_dir)
    # job 2 is "interrupted": its results are gone, its checkpoint stays
    (alibi,) = [name for name in first if name.startswith("2_alibi")]
    (sweep_dir / alibi / "results.json").unlink()
    again = posbench(tmp_path, *args, f"hydra.sweep.dir={sweep_dir}")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "2 of 3 jobs already complete" in again.stderr
    assert "sweep of 3 jobs: 1 ok, 2 reused" in again.stderr
    assert "2 jobs reused from an earlier launch" in again.stdout
    second = jobs(sweep_dir)
    assert second[alibi]["metrics"] == first[alibi]["metrics"]  # re-evaluated from its checkpoint: the same numbers
    for name in first:
        if name != alibi:
            assert second[name] == first[name]  # not run again
    manifest = json.loads((sweep_dir / "sweep.json").read_text())
    assert [job["state"] for job in manifest["jobs"]] == ["reused", "reused", "planned"]


def test_an_optuna_learning_rate_search(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    out = posbench(tmp_path, "-m", "hparams_search=lr", "hydra.sweeper.n_trials=3", "compare_nope=false", *TINY)
    assert out.returncode == 0, out.stderr[-3000:]
    sweep_dir = the_sweep(tmp_path)
    found = jobs(sweep_dir)
    assert len(found) == 3 and all(r["status"] == "ok" for r in found.values())
    rates = sorted(r["config"]["trainer"]["lr"] for r in found.values())
    assert len(set(rates)) == 3 and 1e-4 <= rates[0] and rates[-1] <= 3e-2
    assert all(f"lr={r['config']['trainer']['lr']:g}" in r["label"] for r in found.values())
    best = (sweep_dir / "optimization_results.yaml").read_text()
    assert f"best_value: {max(r['metrics']['acc'] for r in found.values())}" in best
    assert out.stdout.count("# posbench report") == 1


def test_a_search_is_checked_at_the_ends_of_its_range_before_it_starts(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    out = posbench(tmp_path, "-m", "hparams_search=lr", "hydra.sweeper.params={trainer.lr:'interval(-1,0.1)'}", *TINY)
    assert out.returncode == 2
    assert "trainer.lr=-1" in out.stderr and "must be > 0" in out.stderr
    assert not (tmp_path / "outputs").exists()


@pytest.mark.parametrize(
    "args, expected",
    [
        (["-m", "hydra/launcher=joblib", "seed=0,1"], "hydra/launcher=joblib needs hydra-joblib-launcher (pip install 'posbench[sweep]')"),
        (["-m", "hparams_search=lr"], "hydra/sweeper=optuna needs hydra-optuna-sweeper (pip install 'posbench[sweep]')"),
    ],
)
def test_a_launcher_or_search_without_its_plugin_names_the_extra(tmp_path, args, expected):
    """posbench without the `sweep` extra (its plugins hidden from Hydra's plugin scan)."""
    hide = "import sys; sys.modules.update(dict.fromkeys(['hydra_plugins.hydra_joblib_launcher', 'hydra_plugins.hydra_optuna_sweeper']))"
    out = subprocess.run(
        [sys.executable, "-c", f"{hide}; from posbench import cli; sys.exit(cli.main(sys.argv[1:]))", "train", *args, *TINY],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 2 and out.stderr.splitlines() == [f"posbench: error: {expected}"], out.stderr
    assert not (tmp_path / "outputs").exists()

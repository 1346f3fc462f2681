"""The ``posbench`` command as a user runs it: subprocesses from a scratch working directory."""

import json
import re
import subprocess
import sys

from conftest import TINY
from posbench import cli
from posbench.encodings import ENCODINGS
from posbench.models import MODELS
from posbench.tasks import TASKS


def posbench(cwd, *args):
    return subprocess.run(
        [sys.executable, "-m", "posbench", *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def test_list_shows_every_encoding_model_and_task(tmp_path):
    out = posbench(tmp_path, "list")
    assert out.returncode == 0
    for registry in (ENCODINGS, MODELS, TASKS):
        for name, cls in registry.items():
            assert f"  {name} " in out.stdout and cls.description in out.stdout


def test_unknown_command_and_bare_usage(tmp_path):
    out = posbench(tmp_path, "fly")
    assert out.returncode == 2 and "unknown command 'fly'; valid commands: train, report, analyze, plot, list" in out.stderr
    assert posbench(tmp_path).returncode == 2
    assert "usage: posbench" in posbench(tmp_path, "--help").stdout


def test_help_and_cfg_job(tmp_path):
    out = posbench(tmp_path, "train", "--help")
    assert out.returncode == 0 and "Usage: posbench train" in out.stdout
    assert "encoding: " + ", ".join(ENCODINGS.names()) in out.stdout
    out = posbench(tmp_path, "train", "--cfg", "job", "encoding=alibi", "trainer.lr=0.01")
    assert out.returncode == 0
    assert "name: alibi" in out.stdout and "lr: 0.01" in out.stdout and "compare_nope: true" in out.stdout
    assert not (tmp_path / "outputs").exists()


def test_train_prints_the_table_and_tensorboard_command(tmp_path):
    out = posbench(tmp_path, "train", "encoding=rope", "task=copy", *TINY)
    assert out.returncode == 0, out.stderr
    [results] = list((tmp_path / "outputs" / "runs").rglob("results.json"))
    run_dir = results.parent
    assert f"tensorboard --logdir {run_dir}" in out.stdout
    assert "none (no-PE twin)" in out.stdout and "same model, PE off" in out.stdout
    assert json.loads(results.read_text())["encoding"] == "rope"


def test_a_refused_resume_changes_nothing_in_the_run_folder(tmp_path):
    """Re-running into a finished run's folder with another configuration is refused before Hydra
    writes its .hydra/ files; the same configuration re-evaluates from the final checkpoint."""
    run_dir = tmp_path / "run"
    assert posbench(tmp_path, "train", "encoding=rope", *TINY, f"hydra.run.dir={run_dir}").returncode == 0
    before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    out = posbench(tmp_path, "train", "encoding=rope", *TINY, "trainer.lr=0.01", f"hydra.run.dir={run_dir}")
    assert out.returncode == 2
    assert out.stderr == f"posbench: error: {run_dir} holds a run of another configuration (trainer.lr: 0.002 there, 0.01 here); use a new hydra.run.dir\n"
    assert {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()} == before
    again = posbench(tmp_path, "train", "encoding=rope", *TINY, f"hydra.run.dir={run_dir}")
    assert again.returncode == 0 and json.loads((run_dir / "results.json").read_text())["metrics"] == json.loads(
        before[run_dir / "results.json"]
    )["metrics"]


def test_a_diverged_run_is_one_line_and_a_result(tmp_path):
    out = posbench(tmp_path, "train", "trainer.lr=1e30", *TINY)
    assert out.returncode == 0
    [line] = [line for line in (out.stdout + out.stderr).splitlines() if line.startswith("posbench")]
    assert re.fullmatch(r"posbench: rope .*lr=1e\+30.* diverged at step \d+: no accuracy is reported .*results.json", line)


def test_multirun_sweeps_and_trains_each_twin_once(tmp_path):
    out = posbench(tmp_path, "train", "-m", "encoding=none,rope,alibi", "task=reverse", "seed=0,1", *TINY)
    assert out.returncode == 0, out.stderr
    runs = sorted((tmp_path / "outputs" / "sweeps").rglob("results.json"))
    assert len(runs) == 6
    loaded = [json.loads(p.read_text()) for p in runs]
    assert sorted((r["encoding"], r["seed"]) for r in loaded) == sorted(
        (e, s) for e in ("none", "rope", "alibi") for s in (0, 1)
    )
    assert len(list((tmp_path / "outputs" / "twins").glob("*/outcome.json"))) == 2  # one twin per seed
    sweep_dir = runs[0].parent.parent
    assert f"compare: tensorboard --logdir {sweep_dir}" in out.stdout
    assert out.stdout.count("# posbench report") == 1  # one report for the sweep, no table per job


def test_output_into_a_closed_pipe_is_quiet(tmp_path):
    # `true` exits without reading, so posbench's first write hits a closed pipe
    script = f"'{sys.executable}' -m posbench list | true; echo status=${{PIPESTATUS[0]}}"
    out = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert "status=0" in out.stdout and "Traceback" not in out.stderr, out.stderr


def test_report_of_a_folder_without_results_is_one_line(tmp_path, capsys):
    assert cli.main(["report", str(tmp_path)]) == 2
    assert capsys.readouterr().err.splitlines() == [f"posbench: error: no results.json under {tmp_path}"]
    assert cli.main(["report", str(tmp_path / "missing"), "--metric", "acc"]) == 2
    assert cli.main(["report"]) == 2

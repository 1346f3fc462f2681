"""Sweeps are validated whole before the first job trains; invalid jobs refuse the sweep (or are
skipped with ``sweep.skip_invalid=true``); a job that fails or diverges at run time never stops the
others, and the sweep ends with a summary of every job that did not end ``ok``."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import textwrap

from conftest import TINY
from hydra import initialize_config_dir

from posbench import cli, sweep
from posbench.training import interrupt


def posbench(cwd, *args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "posbench", "train", *args], cwd=cwd, capture_output=True, text=True, timeout=600,
        env={**os.environ, **(env or {})},
    )


def results(tmp_path) -> dict:
    """``{"<job number>_<encoding>": results.json}`` of a sweep under ``tmp_path``."""
    found = {}
    for path in (tmp_path / "outputs" / "sweeps").rglob("results.json"):
        result = json.loads(path.read_text())
        found[f"{path.parent.name.split('_')[0]}_{result['encoding']}"] = result
    return found


def test_an_invalid_job_refuses_the_whole_sweep_before_anything_runs(tmp_path):
    out = posbench(tmp_path, "-m", "encoding=rope,xpos,alibi", *TINY)
    assert out.returncode == 2
    assert out.stderr.splitlines() == [
        "posbench: error: 1 of 3 jobs is invalid; nothing was run (sweep.skip_invalid=true runs the others):",
        "posbench: error: job 1 (encoding=xpos): encoding=xpos is defined only for causal attention (e.g. model=decoder)",
    ]
    assert not (tmp_path / "outputs").exists()


def test_every_invalid_job_is_listed_with_its_reason(tmp_path):
    out = posbench(tmp_path, "-m", "trainer.lr=-1,0.001,inf", *TINY)
    assert out.returncode == 2
    assert out.stderr.splitlines()[1:] == [
        "posbench: error: job 0 (trainer.lr=-1): trainer.lr=-1 must be > 0",
        "posbench: error: job 2 (trainer.lr=inf): trainer.lr=inf must be a finite number (within float32's range)",
    ]
    assert not (tmp_path / "outputs").exists()


def test_an_unknown_choice_in_a_sweep_is_an_invalid_job(tmp_path):
    out = posbench(tmp_path, "-m", "encoding=rope,bogus", *TINY)
    assert out.returncode == 2
    assert out.stderr.splitlines()[1].startswith("posbench: error: job 1 (encoding=bogus): unknown encoding 'bogus'; valid")
    assert not (tmp_path / "outputs").exists()


def test_skip_invalid_runs_the_valid_jobs_and_lists_the_skipped_ones_at_the_end(tmp_path):
    out = posbench(tmp_path, "-m", "encoding=rope,xpos,alibi", "sweep.skip_invalid=true", *TINY)
    assert out.returncode == 0, out.stderr
    assert sorted(results(tmp_path)) == ["0_rope", "2_alibi"]
    assert all(r["status"] == "ok" for r in results(tmp_path).values())
    tail = out.stderr.splitlines()[-2:]
    assert tail[0].startswith("sweep of 3 jobs: 2 ok, 1 skipped")
    assert tail[1] == "  skipped job 1 (encoding=xpos): encoding=xpos is defined only for causal attention (e.g. model=decoder)"


def test_a_job_that_fails_at_run_time_does_not_stop_the_sweep(tmp_path):
    """A failure injected into the first job's training (through sitecustomize, so that the real
    command runs): the second job still runs, the first records status failed, the exit code is 1."""
    inject = tmp_path / "inject"
    inject.mkdir()
    (inject / "sitecustomize.py").write_text(textwrap.dedent("""
        import posbench.experiment as experiment
        real = experiment.train_and_evaluate

        def failing(cfg, *args):
            if cfg["encoding"]["name"] == "rope":
                raise RuntimeError("injected failure")
            return real(cfg, *args)

        experiment.train_and_evaluate = failing
    """))
    out = posbench(tmp_path, "-m", "encoding=rope,alibi", *TINY, env={"PYTHONPATH": str(inject)})
    assert out.returncode == 1, out.stderr
    runs = results(tmp_path)
    assert runs["0_rope"]["status"] == "failed"
    assert runs["0_rope"]["error"] == "RuntimeError: injected failure"
    assert runs["0_rope"]["metrics"] is None
    assert runs["1_alibi"]["status"] == "ok"
    assert "sweep of 2 jobs: 1 ok, 1 failed" in out.stderr
    assert "  failed job 0 (encoding=rope): RuntimeError: injected failure (see " in out.stderr


def test_a_diverged_job_is_a_result_of_the_sweep(tmp_path):
    out = posbench(tmp_path, "-m", "trainer.lr=1e30,0.002", "compare_nope=false", *TINY)
    assert out.returncode == 0, out.stderr
    runs = results(tmp_path)
    diverged, ok = runs["0_rope"], runs["1_rope"]
    assert diverged["status"] == "diverged" and diverged["metrics"] is None and diverged["diverged_at"] >= 1
    assert ok["status"] == "ok" and ok["metrics"]["acc"] >= 0
    assert "sweep of 2 jobs: 1 ok, 1 diverged" in out.stderr
    assert f"  diverged job 0 (trainer.lr=1e+30): at step {diverged['diverged_at']}" in out.stderr


def test_options_the_default_encoding_lacks_can_be_swept_over(tmp_path, monkeypatch):
    """Each job is validated as composed: a key of the swept encodings that the default one (rope)
    does not have is not an error of the sweep."""
    monkeypatch.chdir(tmp_path)
    planned = sweep.plan(["encoding=learned,learned_scaled", "encoding.max_len=512", *TINY], multirun=True)
    assert [job.error for job in planned.jobs] == [None, None]
    # each folder is named by the job's own label, its options included
    assert [job.run_dir.name.split("_d_model")[0] for job in planned.jobs] == [
        "0_learned-max_len=512_copy_encoder_s0", "1_learned_scaled-max_len=512_copy_encoder_s0",
    ]
    assert not list(tmp_path.iterdir())  # planning writes nothing


def test_skip_invalid_with_every_job_invalid_runs_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["train", "-m", "sweep.skip_invalid=true", "seed=-1,-2", *TINY]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "posbench: error: 2 of 2 jobs are invalid; nothing was run:",
        "posbench: error: job 0 (seed=-1): seed=-1 must be >= 0",
        "posbench: error: job 1 (seed=-2): seed=-2 must be >= 0",
    ]
    assert not list(tmp_path.iterdir())


def test_the_resume_command_quotes_any_folder(tmp_path):
    """The folder in the resume command survives the shell and Hydra's parser, whatever it holds."""
    folder = tmp_path / "my runs (v2)" / "a,b=c [d]" / "it's $HOME"
    planned = sweep.Plan(False, [sweep.PlannedJob(0, ["seed=1"], run_dir=folder)])
    line = cli.interrupted(interrupt.Interrupted(2, 40, "rope"), ["seed=1"], planned)
    command = shlex.split(line.split("resume with: ", 1)[1])
    assert line.startswith("interrupted at step 40; resume with: ")
    assert command[:3] == ["posbench", "train", "seed=1"] and command[3].startswith("hydra.run.dir=")
    with initialize_config_dir(config_dir=str(sweep.CONFIG_DIR), version_base="1.3"):
        [override] = sweep.parse(command[-1:])
    assert override.value() == str(folder)

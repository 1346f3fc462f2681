"""Ctrl-C and SIGTERM: the run stops at a step boundary with a checkpoint, prints one line with the
command that resumes it, exits with 130 / 143, and the resumed run ends with the same numbers as a
run that was never interrupted."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time

import pytest
import torch

from conftest import TINY, compose, same_weights
from posbench import experiment
from posbench.training import interrupt, loop

#: A run long enough to be interrupted in the middle (about 2.5 s of training on one thread).
LONG = [
    "trainer.max_steps=600", "trainer.batch_size=16", "trainer.checkpoint_every=100", "trainer.eval_every=600",
    "trainer.log_every=50", "trainer.threads=1", "trainer.device=cpu", "model.d_model=32", "model.layers=2",
    "task.eval_size=32", "task.train_lengths=[1,5]", "task.eval_lengths=[3,5,8]", "compare_nope=false",
]


def start(tmp_path, *args):
    return subprocess.Popen(
        [sys.executable, "-m", "posbench", "train", *args], cwd=tmp_path, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True,
    )


def wait_for(path, process, timeout=120):
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def test_sigint_checkpoints_prints_the_resume_command_and_resumes_to_the_same_numbers(tmp_path):
    run_dir = tmp_path / "run"
    process = start(tmp_path, *LONG, f"hydra.run.dir={run_dir}")
    wait_for(run_dir / "checkpoint_rope.pt", process)  # step 100 is done: training is under way
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    [line] = [line for line in err.splitlines() if line.startswith("posbench:")]
    match = re.fullmatch(r"posbench: interrupted at step (\d+); resume with: (.*)", line)
    assert match, line
    step, command = int(match.group(1)), shlex.split(match.group(2))
    assert 100 <= step < 600 and "Traceback" not in err
    assert torch.load(run_dir / "checkpoint_rope.pt", weights_only=True)["step"] == step
    assert not (run_dir / "results.json").exists()
    assert command[:2] == ["posbench", "train"] and command[-1] == f"hydra.run.dir={run_dir}"

    resumed = subprocess.run([sys.executable, "-m", *command[:1], *command[1:]], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    got = json.loads((run_dir / "results.json").read_text())
    straight = experiment.run(compose(LONG, tmp_path / "twins"), tmp_path / "straight")
    for key in ("metrics", "lengths", "pe_off"):
        assert got[key] == straight[key]
    assert same_weights(run_dir / "checkpoint_rope.pt", tmp_path / "straight" / "checkpoint_rope.pt")


def test_sigterm_checkpoints_and_exits_143(tmp_path):
    run_dir = tmp_path / "run"
    process = start(tmp_path, *LONG, f"hydra.run.dir={run_dir}")
    wait_for(run_dir / "checkpoint_rope.pt", process)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 143, err
    assert re.search(r"^posbench: interrupted at step \d+; resume with: posbench train .*hydra.run.dir=", err, re.M)


def test_interrupt_in_process_stops_at_the_step_and_resumes_exactly(tmp_path, monkeypatch):
    """A signal during step 7 is acted upon after that step: checkpoint at 7, then Interrupted."""
    cfg = compose([*TINY, "encoding=alibi", "compare_nope=false"], tmp_path / "twins")
    straight = experiment.run(cfg, tmp_path / "straight")
    real_step = torch.optim.AdamW.step
    calls = {"n": 0}

    def signal_during_step_seven(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 7:
            os.kill(os.getpid(), signal.SIGINT)
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", signal_during_step_seven)
    with interrupt.handle_signals(), pytest.raises(interrupt.Interrupted) as stop:
        experiment.run(cfg, tmp_path / "run")
    assert (stop.value.step, stop.value.signum, stop.value.exit_code) == (7, signal.SIGINT, 130)
    assert loop.load_checkpoint(tmp_path / "run" / "checkpoint_alibi.pt")["step"] == 7
    monkeypatch.setattr(torch.optim.AdamW, "step", real_step)
    resumed = experiment.run(cfg, tmp_path / "run")
    assert resumed["metrics"] == straight["metrics"] and resumed["lengths"] == straight["lengths"]
    assert same_weights(tmp_path / "run" / "checkpoint_alibi.pt", tmp_path / "straight" / "checkpoint_alibi.pt")


def test_a_signal_outside_the_training_loop_stops_at_once(tmp_path):
    """Outside the loop (here: building the task), the first signal raises without a step."""
    with interrupt.handle_signals(), pytest.raises(interrupt.Interrupted) as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(1)  # the handler runs at the next bytecode boundary
    assert stop.value.step is None and stop.value.exit_code == 143
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL

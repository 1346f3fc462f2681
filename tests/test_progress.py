"""Progress off a terminal (timed lines through the ``posbench`` logger) and on one (tqdm's bar):
training announces its start and end, logs at most every EVERY_SECONDS in between; evaluations
log only when they take that long. A fake clock (one tick per reading) replaces wall time."""

from __future__ import annotations

import logging
import re

import pytest
import torch
from torch.utils.tensorboard import SummaryWriter

from posbench.config import TrainerConfig, build_model
from posbench.training import loop, progress
from posbench.training.evaluate import evaluate, score
from posbench.training.progress import Progress, clock
from posbench.validation import validate

STEP_LINE = (
    r"job 1/2 rope: step (\d+)/12  loss \d+\.\d{3}  batch_acc \d\.\d{3}(  test_acc \d\.\d{3})?  [\d.]+ steps/s  "
    r"(ETA \d+:\d\d|done in \d+:\d\d)"
)


class FakeClock:
    """``time.monotonic`` for the progress module: each reading is ``tick`` seconds after the last."""

    def __init__(self, tick: float = 1.0):
        self.now, self.tick = 0.0, tick

    def __call__(self) -> float:
        self.now += self.tick
        return self.now


@pytest.fixture
def off_terminal(monkeypatch):
    """Progress as in a pipe or a Slurm log, on a fake clock (returned: its ``tick`` can change)."""
    fake = FakeClock()
    monkeypatch.setattr(progress, "on_terminal", lambda: False)
    monkeypatch.setattr(progress, "monotonic", fake)
    return fake


@pytest.fixture
def trained(tiny_cfg, tmp_path):
    """``trained(desc=None)``: a tiny rope model trained 12 steps by ``fit``; returns it and its job."""

    def train(desc: str | None = None, label: str = "rope"):
        job = validate(tiny_cfg("encoding=rope", "compare_nope=false"), tmp_path / "run")
        torch.manual_seed(0)
        model = build_model(job.cfg, job.task)
        with SummaryWriter(str(tmp_path / "run" / "tb")) as writer:
            loop.fit(
                model, job.task, job.task.test_set(job.device), TrainerConfig(**job.cfg["trainer"]), 0, job.device,
                writer, checkpoint=tmp_path / "run" / "checkpoint.pt", label=label, fingerprint=job.fingerprint,
                desc=desc,
            )
        return model, job

    return train


def lines(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "posbench"]


def test_off_a_terminal_training_logs_each_interval_from_the_first_step_to_the_last(trained, off_terminal, monkeypatch, caplog):
    monkeypatch.setattr(progress, "EVERY_SECONDS", 0.0)
    with caplog.at_level(logging.INFO, logger="posbench"):
        trained(desc="job 1/2 rope")
    steps = [line for line in lines(caplog) if ": step " in line]
    assert steps[0] == "job 1/2 rope: step 0/12"
    assert [int(re.search(r"step (\d+)/", line).group(1)) for line in steps] == [0, *range(1, 13), 12]
    for line in steps[3:]:  # the loss is first measured at step 3 (log_every)
        assert re.fullmatch(STEP_LINE, line), line
    assert all("ETA" in line for line in steps[1:-1]) and "ETA" not in steps[-1]
    assert re.fullmatch(r"job 1/2 rope: step 12/12  .*  [\d.]+ steps/s  done in 0:\d\d", steps[-1])
    assert "job 1/2 rope: step 6/12  loss" in steps[6] and steps[6].endswith("1.0 steps/s  ETA 0:06")
    # the periodic evaluations log too at this interval, under the same prefix
    assert any(line.startswith("job 1/2 rope: evaluating at step 6: ") for line in lines(caplog))


def test_a_short_run_logs_only_its_start_and_end_at_the_default_interval(trained, off_terminal, caplog):
    off_terminal.tick = 0.5  # the whole run reads the clock well under 60 times: under 30 s
    assert progress.EVERY_SECONDS == 30.0
    with caplog.at_level(logging.INFO, logger="posbench"):
        trained()
    start, end = lines(caplog)  # no evaluation line either
    assert start == "rope: step 0/12"
    assert re.fullmatch(r"rope: step 12/12  loss \d\.\d{3}  batch_acc \d\.\d{3}  test_acc \d\.\d{3}  [\d.]+ steps/s  done in 0:\d\d", end)


def test_desc_defaults_to_the_label_and_divergence_still_names_the_label(trained, off_terminal, monkeypatch, caplog):
    real = loop.SequenceModel.loss
    calls = {"n": 0}

    def nan_at_step_four(self, src, tgt):
        calls["n"] += 1
        loss, pred = real(self, src, tgt)
        return (loss * float("nan") if calls["n"] == 4 else loss), pred

    monkeypatch.setattr(loop.SequenceModel, "loss", nan_at_step_four)
    with caplog.at_level(logging.INFO, logger="posbench"), pytest.raises(loop.Diverged, match="^rope diverged at step 4"):
        trained(desc="job 1/2 rope(scale=4)")
    first, last = lines(caplog)
    assert first == "job 1/2 rope(scale=4): step 0/12"
    assert re.fullmatch(r"job 1/2 rope\(scale=4\): step 3/12  loss .*  stopped after 0:\d\d", last)


def test_evaluation_logs_only_when_it_takes_long(trained, off_terminal, monkeypatch, caplog):
    model, job = trained()
    test_set, length_sets = job.task.test_set(job.device), job.task.length_sets(job.device)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="posbench"):
        quick = evaluate(model, job.task, test_set, length_sets, desc="rope")
        score(model, test_set, job.task, progress="rope: encoding off")
    assert lines(caplog) == []  # under 30 s (of the fake clock): nothing extra

    monkeypatch.setattr(progress, "EVERY_SECONDS", 0.0)
    with caplog.at_level(logging.INFO, logger="posbench"):
        slow = evaluate(model, job.task, test_set, length_sets, desc="rope")
    assert slow == quick
    logged = lines(caplog)
    total = 32 + 3 * 32  # task.eval_size examples in the test set and at each of the 3 lengths
    assert all(line.startswith("rope: evaluating: ") for line in logged)
    assert f"rope: evaluating: {total}/{total} examples  on length 8" in logged[-1] and "done in" in logged[-1]
    assert any(re.match(r"rope: evaluating: 32/128 examples  on test set  [\d.]+ examples/s  ETA \d+:\d\d$", line) for line in logged)
    assert any("on length 5" in line for line in logged)

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="posbench"):
        alone = score(model, test_set, job.task, progress="rope: encoding off")
    assert alone == slow["metrics"]
    assert lines(caplog)[-1].startswith("rope: encoding off: 32/32 examples  ")


def test_on_a_terminal_it_is_tqdm_and_no_line(trained, monkeypatch, caplog, capsys):
    monkeypatch.setattr(progress, "on_terminal", lambda: True)
    monkeypatch.setattr(progress, "EVERY_SECONDS", 0.0)
    with caplog.at_level(logging.INFO, logger="posbench"):
        model, job = trained(desc="job 1/2 rope")
        evaluate(model, job.task, job.task.test_set(job.device), job.task.length_sets(job.device), desc="job 1/2 rope")
    assert lines(caplog) == []
    err = capsys.readouterr().err
    assert "job 1/2 rope:" in err and "job 1/2 rope: evaluating:" in err and "/12" in err


def test_lines_count_from_a_resumed_step_and_wait_for_the_interval(monkeypatch, caplog):
    fake = FakeClock(tick=0.0)
    monkeypatch.setattr(progress, "on_terminal", lambda: False)
    monkeypatch.setattr(progress, "monotonic", fake)
    with caplog.at_level(logging.INFO, logger="posbench"):
        bar = Progress("job 3/12 rope(scale=4)", 1000, start=200)
        fake.now = 20.0
        bar.update(100, loss="0.500")  # 20 s after the start: no line yet
        fake.now = 40.0
        bar.update(100, loss="0.412", acc="0.873")
        fake.now = 50.0
        bar.update(50)
        fake.now = 100.0
        bar.close()
        bar.close()  # once only
    assert lines(caplog) == [
        "job 3/12 rope(scale=4): step 200/1000",
        "job 3/12 rope(scale=4): step 400/1000  loss 0.412  acc 0.873  5.0 steps/s  ETA 2:00",
        "job 3/12 rope(scale=4): step 450/1000  loss 0.412  acc 0.873  2.5 steps/s  stopped after 1:40",
    ]


def test_clock():
    assert [clock(s) for s in (0, 28.4, 61, 3599.6, 3725)] == ["0:00", "0:28", "1:01", "1:00:00", "1:02:05"]

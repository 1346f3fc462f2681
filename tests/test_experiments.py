"""Reproductions as ``experiment=`` configs (``configs/experiment/``, budgets in ``configs/budget/``):
the smoke budgets of kazemnejad2023 and ruoss2023 (narrowed to a few tasks) run end to end and end with the paper's table;
every other budget that needs no download plans without an invalid job; an experiment's arms and
the command line combine as documented; the report's reproduction summaries compute what they say
on hand-made results; addition's formats of Zhou et al. 2024 write what the paper writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser

from hydra_plugins.posbench_sweeper.sweeper import combinations
from posbench import sweep
from posbench.errors import ConfigError
from posbench.report import experiments
from posbench.reporting import write_report
from posbench.reporting import reproduction as repro
from posbench.tasks import TASKS


def posbench(cwd, *args):
    return subprocess.run(
        [sys.executable, "-m", "posbench", "train", *args], cwd=cwd, capture_output=True, text=True, timeout=900,
        env={**os.environ, "HF_DATASETS_OFFLINE": "1"},
    )


def sweep_results(folder) -> list[dict]:
    return [json.loads(path.read_text()) for path in sorted(folder.rglob("results.json")) if "twins" not in path.parts]


# ---- the smoke budgets, end to end -----------------------------------------------------------
def test_kazemnejad2023_smoke_runs_every_encoding_and_ends_with_the_ranking(tmp_path):
    # three of its seven tasks (the whole smoke budget, 42 jobs, takes about 75 s; the suite keeps to 18)
    out = posbench(tmp_path, "-m", "experiment=kazemnejad2023", "budget=smoke", "task=copy,addition,parity", "hydra.sweep.dir=sweep")
    assert out.returncode == 0, out.stderr[-3000:]
    runs = sweep_results(tmp_path / "sweep")
    assert len(runs) == 3 * 6 and {run["status"] for run in runs} == {"ok"}
    assert {run["model"] for run in runs} == {"decoder"}
    assert {run["encoding"] for run in runs} == {"none", "sinusoidal", "learned", "rope", "alibi", "t5"}
    assert {run["config"]["reproduction"]["budget"] for run in runs} == {"smoke"}
    assert {tuple(run["train_lengths"]) for run in runs} == {(2, 20)}
    assert all(set(run["lengths"]) == {"20", "30", "40"} for run in runs)  # the smoke budget's lengths
    report = (tmp_path / "sweep" / "report.md").read_text()
    assert report in out.stdout  # printed at the end of the sweep
    assert "## Reproduction: kazemnejad2023 (budget smoke)" in report and "metric: seq_acc" in report
    assert "| rank | label | MRR, all labels | MRR, the paper's labels | MRR reported |" in report
    assert "Order reported: none > t5 > alibi > rope > sinusoidal." in report
    assert "Scenarios: 6 (task, length beyond training)" in report  # 3 tasks x lengths 30 and 40


def test_ruoss2023_smoke_runs_each_arm_and_ends_with_the_randomized_gain(tmp_path):
    # one of the smoke budget's three tasks: every arm (the whole budget, 33 jobs, takes about 50 s)
    out = posbench(tmp_path, "-m", "experiment=ruoss2023", "budget=smoke", "task=parity", "hydra.sweep.dir=sweep")
    assert out.returncode == 0, out.stderr[-3000:]
    runs = sweep_results(tmp_path / "sweep")
    assert len(runs) == 11 and {run["status"] for run in runs} == {"ok"}
    assert {run["model"] for run in runs} == {"encoder"}
    randomized = {json.dumps(run["config"]["encoding"]["base"]) for run in runs if run["encoding"] == "randomized"}
    assert randomized == {'"sinusoidal"', '{"name": "learned", "max_len": 2048}', '"rope"', '"alibi"', '"xl"'}
    assert {run["config"]["model"]["layers"] for run in runs} == {2}  # the smoke budget's, over the experiment's 5
    report = (tmp_path / "sweep" / "report.md").read_text()
    assert "## Reproduction: ruoss2023 (budget smoke)" in report
    assert "| base | acc alone | randomized | gain (points) | best task (points) | tasks |" in report
    assert "over 5 encodings; reported: +12.0 points." in report
    assert "| learned(max_len=2048) |" in report  # paired with randomized(base=learned(max_len=2048),...)


# ---- planning: every budget validates --------------------------------------------------------
@pytest.mark.parametrize(("name", "budget", "jobs"), [
    ("zhou2024_addition", "smoke", 1), ("zhou2024_addition", "cpu", 3), ("zhou2024_addition", "paper", 5),
    ("captioning_pe", "smoke", 4), ("captioning_pe", "cpu", 8), ("captioning_pe", "paper", 20),
    ("vit_small_pe", "smoke", 7), ("vit_small_pe", "cpu", 28),
    ("pe2025", "smoke", 16),
])
def test_an_experiments_budget_plans_every_job_valid(tmp_path, monkeypatch, name, budget, jobs):
    # kazemnejad2023 and ruoss2023 at cpu and paper plan 84-363 jobs (a minute or more each: checked by
    # hand, see the README); vit_small_pe at paper needs CIFAR-10 from the hub
    monkeypatch.chdir(tmp_path)
    planned = sweep.plan([f"experiment={name}", f"budget={budget}"], True)
    assert len(planned.jobs) == jobs
    assert [job.error for job in planned.jobs if job.error] == []
    assert not list(tmp_path.iterdir())  # planning writes nothing


def test_the_command_line_narrows_an_experiment_and_its_arms_come_first(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    planned = sweep.plan(["experiment=kazemnejad2023", "budget=smoke", "task=copy", "encoding=none,rope"], True)
    assert [job.identity["label"].split(" ")[0] for job in planned.jobs] == ["none", "rope"]
    assert {job.identity["task"] for job in planned.jobs} == {"copy"}
    planned = sweep.plan(["experiment=ruoss2023", "budget=smoke", "task=parity"], True)
    assert [job.identity["label"].split(" ")[0] for job in planned.jobs][:2] == ["none", "sinusoidal"]
    assert planned.jobs[6].swept[:3] == ["encoding=randomized", "encoding.base=sinusoidal", "encoding.max_random_len=2048"]


def test_combinations_cross_each_arm_with_every_swept_value():
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(sweep.CONFIG_DIR), version_base="1.3"):
        parser = OverridesParser.create(config_loader=GlobalHydra.instance().config_loader())
        parsed = parser.parse_overrides(["task=copy,reverse", "seed=0,1", "seed=3"])  # a later value replaces
        arms = [["encoding=none"], ["encoding=randomized", "encoding.base=rope"]]
        assert combinations(parsed, arms) == [
            ["encoding=none", "task=copy", "seed=3"], ["encoding=none", "task=reverse", "seed=3"],
            ["encoding=randomized", "encoding.base=rope", "task=copy", "seed=3"],
            ["encoding=randomized", "encoding.base=rope", "task=reverse", "seed=3"],
        ]
        assert combinations(parsed, []) == [["task=copy", "seed=3"], ["task=reverse", "seed=3"]]


def test_posbench_list_names_every_experiment_with_its_paper():
    found = experiments()
    assert set(found) == {"kazemnejad2023", "ruoss2023", "zhou2024_addition", "vit_small_pe", "captioning_pe", "pe2025"}
    assert found["kazemnejad2023"].startswith("Kazemnejad et al. 2023")


# ---- refusals --------------------------------------------------------------------------------
@pytest.mark.parametrize(("args", "message"), [
    (["budget=smoke"], "budget=smoke scales an experiment: add experiment=NAME (captioning_pe, kazemnejad2023, "),
    (["-m", "experiment=kazemnejad2023,ruoss2023"], "experiment=kazemnejad2023,ruoss2023: run one experiment at one budget per command"),
    (["-m", "experiment=zhou2024_addition", "budget=smoke,cpu"], "budget=smoke,cpu: run one experiment at one budget per command"),
    (["-m", "experiment=ruoss2023", "hparams_search=lr"], "hparams_search=lr: an experiment is a sweep of its own; it cannot be searched"),
    (["-m", "experiment=null"], "experiment=null: a config group takes an option's name, not null (leave experiment out)"),
    (["experiment=kazemnejad2023"], "experiment=kazemnejad2023 is a sweep of several jobs: add -m"),
    (["-m", "experiment=ruoss2023", "encoding=rope"], "encoding=rope: experiment=ruoss2023 sets encoding in each of its arms"),
    (["-m", "experiment=kazemnejad2023", "budget=huge"], "unknown budget 'huge'; valid choices: cpu, paper, smoke"),
    (["-m", "experiment=nope"], "unknown experiment 'nope'; valid choices: captioning_pe, kazemnejad2023, "),
    (["-m", "experiment=zhou2024_addition", "reproduction.summary=median"], "reproduction.summary=median must be one of"),
    (["-m", "experiment=zhou2024_addition", "task.vocab_size=50"], "task.vocab_size=50 is too small for task.index_hints=102"),
])
def test_bad_experiment_input_is_one_line_before_anything_runs(refusal, args, message):
    assert message in refusal(args)


# ---- addition's formats (Zhou et al. 2024) ---------------------------------------------------
def addition(**options):
    return TASKS.build({"name": "addition", "vocab_size": 11, "train_lengths": [1, 5], "eval_lengths": [5], **options})


def test_addition_formats_write_the_sum_as_documented():
    src = torch.tensor([[8, 9, 3, 10, 2, 3, 1]])  # 893 + 231 = 1124
    assert addition().target(src)[0].tolist() == [1, 1, 2, 4, 11]
    assert addition(reversed="answer").target(src)[0].tolist() == [4, 2, 1, 1, 11]
    assert addition(reversed="all").target(torch.tensor([[3, 9, 8, 10, 1, 3, 2]]))[0].tolist() == [4, 2, 1, 1, 11]
    hinted = addition(index_hints=30, vocab_size=41)  # hints are symbols 11..40; offset o = 18: units get h29
    src = torch.tensor([[31, 8, 30, 9, 29, 3, 10, 31, 2, 30, 3, 29, 1]])
    assert hinted.target(src)[0].tolist() == [32, 1, 31, 1, 30, 2, 29, 4, 41]
    both = addition(index_hints=30, vocab_size=41, reversed="all")
    src = torch.tensor([[29, 3, 30, 9, 31, 8, 10, 29, 1, 30, 3, 31, 2]])
    assert both.target(src)[0].tolist() == [29, 4, 30, 2, 31, 1, 32, 1, 41]


def test_addition_hints_follow_the_digits_and_cover_the_whole_set_in_training():
    task = addition(index_hints=12, vocab_size=23, reversed="all")
    generator = torch.Generator().manual_seed(0)
    seen = set()
    for length in (1, 3, 5):
        src, tgt = task.sample(256, length, generator)
        assert src.shape[1] == task.source_len(length) == 4 * length + 1
        hints = torch.cat([src[:, : 2 * length : 2], src[:, 2 * length + 1 :: 2]], dim=1)
        assert ((hints >= 11) & (hints < 23)).all() and (src[:, 1 : 2 * length : 2] < 10).all()
        # least significant digit first: hints increase by one along each operand
        assert (hints[:, 1:length] - hints[:, : length - 1] == 1).all()
        answer_hints = tgt[(tgt >= 11) & (tgt < 23)]  # the sum's extra digit takes the hint after the operands'
        seen |= set(hints.flatten().tolist()) | set(answer_hints.tolist())
        assert torch.equal(task.target(src), tgt)
    assert seen == set(range(11, 23))


@pytest.mark.parametrize(("options", "message"), [
    ({"index_hints": 30}, "task.vocab_size=11 is too small for task.index_hints=30: the hints are symbols 11..40, set task.vocab_size=41"),
    ({"index_hints": 5, "vocab_size": 16}, "task.index_hints=5 must be at least 6"),
])
def test_addition_refuses_hints_that_do_not_fit(options, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        addition(**options)


# ---- the report's summaries on hand-made results ----------------------------------------------
SPEC = {
    "name": "demo", "budget": "cpu", "paper": "A et al.", "finding": "x beats y", "summary": "mrr", "metric": "acc",
    "beyond": True, "published": {}, "published_as": "",
}


def write_run(folder, name, label, task, seed, lengths, spec, encoding=None):
    """A results.json trained on lengths [1, 10] with ``lengths`` ({length: acc}) scored."""
    run = {
        "status": "ok", "label": label, "encoding": label.split("(")[0], "task": task, "model": "decoder", "seed": seed,
        "train_lengths": [1, 10], "metrics": {"acc": 0.9, "seq_acc": 0.5}, "nope": None,
        "lengths": {str(n): {"acc": value, "seq_acc": value} for n, value in lengths.items()},
        "config": {"reproduction": spec, "encoding": encoding or {"name": label}},
    }
    (folder / name).mkdir(parents=True)
    (folder / name / "results.json").write_text(json.dumps(run))


def test_mrr_ranks_within_each_task_and_length_beyond_training_with_ties_sharing_the_better_rank(tmp_path):
    spec = dict(SPEC, published={"none": 0.7, "rope": 0.3})
    write_run(tmp_path, "a", "none", "copy", 0, {5: 0.0, 20: 0.9, 30: 0.5}, spec)
    write_run(tmp_path, "b", "rope", "copy", 0, {5: 1.0, 20: 0.1, 30: 0.5}, spec)
    write_run(tmp_path, "c", "alibi", "copy", 0, {5: 1.0, 20: 0.5, 30: 0.2}, spec)
    text = write_report(tmp_path, plots=False)
    # length 5 is in distribution (not ranked); at 20: none 1, alibi 1/2, rope 1/3; at 30: none = rope 1, alibi 1/3;
    # among the paper's labels (none, rope): at 20 none 1, rope 1/2; at 30 both 1
    assert "| 1 | none | 1.00 | 1.00 | 0.7 |" in text
    assert "| 2 | rope | 0.67 | 0.75 | 0.3 |" in text
    assert "| 3 | alibi | 0.42 | — | — |" in text
    assert "Order here (the paper's labels): none > rope." in text and "τ-b between the two: +1.00 over 2 labels" in text
    assert "| copy | 0.700 (n=1) | 0.300 (n=1) | 0.350 (n=1) |" in text  # mean over 20 and 30


def test_mrr_ties_are_shown_as_ties_and_a_missing_value_ranks_last(tmp_path):
    spec = dict(SPEC, published={"none": 0.7, "rope": 0.3, "t5": 0.5})
    write_run(tmp_path, "a", "none", "copy", 0, {20: 0.0}, spec)
    write_run(tmp_path, "b", "rope", "copy", 0, {20: 0.0}, spec)
    write_run(tmp_path, "c", "t5", "copy", 0, {5: 1.0}, spec)  # no length beyond training: ranks last
    text = write_report(tmp_path, plots=False)
    assert "| 1 | none | 1.00 | 1.00 | 0.7 |" in text and "| 1 | rope | 1.00 | 1.00 | 0.3 |" in text
    assert "| 3 | t5 | 0.33 | 0.33 | 0.5 |" in text
    assert "Order here (the paper's labels): none = rope > t5." in text
    # (none, t5) agree, (rope, t5) disagree, (none, rope) tied here: (1 - 1) / sqrt(2 * 3)
    assert "τ-b between the two: +0.00 over 3 labels" in text


def test_randomized_gain_pairs_each_randomized_run_with_its_base(tmp_path):
    spec = dict(SPEC, summary="randomized_gain", published={"mean_gain": 12.0})
    for task, alone, randomized in (("parity", 0.5, 0.6), ("reverse", 0.2, 0.4)):
        write_run(tmp_path, f"{task}-l", "learned(max_len=64)", task, 0, {20: alone}, spec)
        write_run(tmp_path, f"{task}-r", "randomized(base=learned(max_len=64),max_random_len=64)", task, 0, {20: randomized}, spec)
        write_run(tmp_path, f"{task}-n", "none", task, 0, {20: 0.1}, spec)
    text = write_report(tmp_path, plots=False)
    assert "| learned(max_len=64) | 0.350 | 0.500 | +15.0 | +20.0 | 2 |" in text
    assert "Mean gain here: +15.0 points over 1 encodings; reported: +12.0 points." in text
    assert repro._base_of("randomized(base=combo(parts=[a,b]),max_random_len=9)") == "combo(parts=[a,b])"
    assert repro._base_of("rope") is None


def test_by_seed_lists_every_seed_and_the_best_at_the_longest_length(tmp_path):
    spec = dict(SPEC, summary="by_seed", metric="seq_acc", published={"best": 0.98})
    write_run(tmp_path, "s10", "randomized", "addition", 10, {10: 1.0, 25: 0.2}, spec)
    write_run(tmp_path, "s2", "randomized", "addition", 2, {10: 1.0, 25: 0.9}, spec)
    text = write_report(tmp_path, plots=False)
    assert "| randomized | 2 | 1.000 | 0.900 |\n| randomized | 10 | 1.000 | 0.200 |" in text  # seeds in numeric order
    assert "Best seed at len25: 0.900; reported: 0.980 (the paper)." in text
    assert "metric: seq_acc" in text  # the experiment's metric is the report's default


def test_published_claims_stand_beside_each_label_and_replace_an_empty_reported_column(tmp_path):
    spec = dict(SPEC, summary="published", claims={"alibi": "Press et al.: trains short, tests long", "rope(p=0.75)": "B: better"})
    write_run(tmp_path, "a", "alibi", "copy", 0, {20: 0.8, 30: 0.6}, spec)
    write_run(tmp_path, "b", "rope(p=0.75)", "copy", 0, {20: 0.4}, spec, encoding={"name": "rope", "p": 0.75})
    write_run(tmp_path, "c", "none", "copy", 0, {20: 0.1}, spec)
    text = write_report(tmp_path, plots=False)
    assert "| label | copy | published claim |" in text  # no numbers published: no "reported" column
    assert "| alibi | 0.700 (n=1) | Press et al.: trains short, tests long |" in text  # mean over 20 and 30
    assert "| rope(p=0.75) | 0.400 (n=1) | B: better |" in text and "| none | 0.100 (n=1) | — |" in text
    spec = dict(spec, published={"none": 0.2})
    write_run(tmp_path, "d", "none", "copy", 1, {20: 0.3}, spec)
    for name in "abc":
        (tmp_path / name / "results.json").unlink()
        (tmp_path / name).rmdir()
    text = write_report(tmp_path, plots=False)
    assert "| label | copy | reported | published claim |" in text and "| none | 0.300 (n=1) | 0.2 | — |" in text


def test_a_relaunch_with_an_edited_experiment_reports_the_latest_description(tmp_path):
    """Jobs complete before an experiment's file was edited are not run again: their runs keep the old
    description; the section shows the most recently started run's."""
    old, new = dict(SPEC, summary="published", claims={"a": "old claim"}), dict(SPEC, summary="published", claims={"a": "new claim"})
    write_run(tmp_path, "early", "a", "copy", 0, {20: 0.5}, old)
    write_run(tmp_path, "late", "b", "copy", 0, {20: 0.5}, new)
    for name, started in (("early", "2026-11-30T10:00:00+00:00"), ("late", "2026-11-30T11:00:00+00:00")):
        path = tmp_path / name / "results.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), "provenance": {"started": started}}))
    text = write_report(tmp_path, plots=False)
    assert "| a | 0.500 (n=1) | new claim |" in text and "old claim" not in text
    write_run(tmp_path, "other", "c", "copy", 0, {20: 0.5}, dict(new, name="another"))
    assert "## Reproduction" not in write_report(tmp_path, plots=False)  # two experiments


def test_runs_of_no_experiment_or_of_several_get_no_reproduction_section(tmp_path):
    write_run(tmp_path, "a", "none", "copy", 0, {20: 0.5}, None)
    assert "## Reproduction" not in write_report(tmp_path, plots=False)
    write_run(tmp_path, "b", "rope", "copy", 0, {20: 0.5}, SPEC)
    assert "## Reproduction" not in write_report(tmp_path, plots=False)

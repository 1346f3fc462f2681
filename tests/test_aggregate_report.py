"""``posbench report DIR``: results.json files written by hand (no training, no torch) are
aggregated into the right numbers, ranking, CSV, plots and list of what is not ok."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from posbench.errors import ConfigError
from posbench.reporting import main, write_report


def result(folder: Path, label: str = "rope", task: str = "copy", model: str = "encoder", seed: int = 0, acc=0.5,
           twin=None, status: str = "ok", lengths=None, metrics=None, pe_off=None, **fields) -> dict:
    """Write ``folder/results.json`` of a run (``twin``: the no-PE twin's acc, or its whole entry)."""
    ok = status == "ok"
    metrics = metrics or {"acc": acc, "seq_acc": acc / 2}
    if isinstance(twin, (int, float)):
        twin = {"status": "ok", "diverged_at": None, "metrics": {"acc": twin, "seq_acc": twin / 2},
                "lengths": {"5": {"acc": twin, "seq_acc": 0.0}, "20": {"acc": twin / 2, "seq_acc": 0.0}}}
    data = {
        "status": status, "label": label, "encoding": label.split("(")[0], "task": task, "model": model,
        "seed": seed, "device": "cpu", "chance": 0.0625, "constant_ceiling": 0.3, "train_lengths": [1, 10],
        "diverged_at": None, "metrics": metrics if ok else None,
        "lengths": (lengths or {"5": dict(metrics), "20": {k: v / 2 for k, v in metrics.items()}}) if ok else None,
        "pe_off": pe_off if ok else None, "nope": twin,
        "provenance": {"wall_time_s": 1.0, "twin": f"/twins/{label}-{task}-{model}-{seed}"},
        "config": {"seed": seed}, **fields,
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(json.dumps(data))
    return data


def rows_of(path: Path) -> dict[tuple[str, str, str], dict]:
    with path.open(newline="") as handle:
        return {(row["task"], row["model"], row["label"]): row for row in csv.DictReader(handle)}


def ranking(text: str) -> list[tuple[str, str]]:
    """``(label, MRR)`` from the ranking table of a report."""
    table = text.split("## Ranking by mean reciprocal rank")[1].split("##")[0]
    cells = [line.strip("| ").split(" | ") for line in table.splitlines() if line.startswith("| ") and line[2].isdigit()]
    return [(cells_[1], cells_[2]) for cells_ in cells]


def test_mean_std_twin_and_delta_over_seeds(tmp_path):
    for seed, (acc, twin) in enumerate([(0.9, 0.3), (0.8, 0.4), (1.0, 0.5)]):
        result(tmp_path / f"{seed}_rope_copy_encoder_s{seed}", seed=seed, acc=acc, twin=twin)
    result(tmp_path / "3_none_copy_encoder_s0", label="none", acc=0.25)
    text = write_report(tmp_path, plots=False)
    assert "4 runs (4 ok) over 3 seeds" in text
    # mean 0.9, sample std 0.1; twins 0.3, 0.4, 0.5; deltas 0.6, 0.4, 0.5
    assert "| task | none | rope | no-PE twin | chance | constant ceiling |" in text
    assert "| copy | 0.250 (n=1) | 0.900 ± 0.100 (n=3) | 0.400 ± 0.100 (n=3) | 0.062 | 0.300 |" in text
    assert "| task | rope |\n| --- | --- |\n| copy | +0.500 ± 0.100 (n=3) |" in text
    row = rows_of(tmp_path / "report.csv")[("copy", "encoder", "rope")]
    assert float(row["mean"]) == pytest.approx(0.9) and float(row["std"]) == pytest.approx(0.1) and row["n"] == "3"
    assert float(row["twin_mean"]) == pytest.approx(0.4) and float(row["delta_vs_twin"]) == pytest.approx(0.5)
    assert row["values"] == "0=0.9 1=0.8 2=1.0" and float(row["chance"]) == 0.0625


def test_a_repeated_seed_counts_once_the_latest(tmp_path):
    result(tmp_path / "a", acc=0.2, provenance={"started": "2026-01-02T00:00:00"})
    result(tmp_path / "b", acc=0.6, provenance={"started": "2026-01-01T00:00:00"})
    text = write_report(tmp_path, plots=False)
    assert "| copy | 0.200 (n=1) |" in text
    assert "superseded: `b` (rope, copy / encoder, seed 0)" in text


def test_mean_reciprocal_rank_over_two_tasks_with_a_tie(tmp_path):
    accs = {"copy": {"none": 0.5, "rope": 0.9, "alibi": 0.7}, "reverse": {"none": 0.6, "rope": 0.8, "alibi": 0.8}}
    for task, by_label in accs.items():
        for number, (label, acc) in enumerate(by_label.items()):
            result(tmp_path / task / f"{number}_{label}", label=label, task=task, acc=acc)
    text = write_report(tmp_path, plots=False)
    # copy: rope 1, alibi 2, none 3; reverse: rope and alibi share 1, none 3
    assert ranking(text) == [("rope", "1.000"), ("alibi", "0.750"), ("none", "0.333")]
    assert "| task | none | rope | alibi | no-PE twin |" in text
    assert "| rank | label | MRR | rows |" in text and "| 1 | rope | 1.000 | 2 |" in text


def test_perplexity_ranks_lower_first_and_rows_split_by_model(tmp_path):
    for label, acc, ppl in [("rope", 0.5, 2.0), ("alibi", 0.6, 3.0)]:
        metrics = {"acc": acc, "seq_acc": 0.0, "ppl": ppl}
        result(tmp_path / f"lm_{label}", label=label, task="lm", model="decoder", metrics=metrics)
    result(tmp_path / "copy", label="alibi", task="copy", model="encoder", acc=0.7)
    assert [label for label, _ in ranking(write_report(tmp_path, plots=False))] == ["alibi", "rope"]
    text = write_report(tmp_path, metric="ppl", plots=False)
    assert [label for label, _ in ranking(text)] == ["rope", "alibi"]
    # columns in order of first appearance (path order): alibi, rope; no chance beside perplexity
    assert "## ppl (lower is better)" in text and "| task / model | alibi | rope | no-PE twin |\n" in text
    assert "| copy / encoder | — | — | — |" in text and "| lm / decoder | 3.00 (n=1) | 2.00 (n=1) | — |" in text


def test_per_length_and_pe_off_metrics(tmp_path):
    lengths = {"5": {"acc": 1.0, "seq_acc": 1.0}, "20": {"acc": 0.25, "seq_acc": 0.125}}
    result(tmp_path / "r", acc=0.8, twin=0.4, lengths=lengths, pe_off={"acc": 0.1, "seq_acc": 0.05})
    text = write_report(tmp_path, metric="len20", plots=False)
    assert "## len20 (higher is better)" in text and "| copy | 0.250 (n=1) | 0.200 (n=1) |" in text  # twin: 0.4 / 2
    assert "| copy | +0.050 (n=1) |" in text
    assert "| copy | 0.125 (n=1) |" in write_report(tmp_path, metric="len20.seq_acc", plots=False)
    assert "| copy | 0.100 (n=1) | 0.400 (n=1) |" in write_report(tmp_path, metric="pe_off", plots=False)
    assert rows_of(tmp_path / "report.csv")[("copy", "encoder", "rope")]["metric"] == "pe_off"


def test_what_is_not_ok_or_not_complete_is_listed(tmp_path):
    sweep = tmp_path / "sweep"
    result(sweep / "0_rope_copy_encoder_s0", twin=0.3)
    result(sweep / "1_alibi_copy_encoder_s0", label="alibi", status="failed", error="RuntimeError: boom")
    result(sweep / "2_t5_copy_encoder_s0", label="t5", status="diverged", diverged_at=123)
    result(sweep / "3_rope_copy_encoder_s1", seed=1, twin={"status": "diverged", "diverged_at": 7, "metrics": None, "lengths": None})
    (sweep / "4_learned_copy_encoder_s0").mkdir()
    (sweep / "5_sinusoidal_copy_encoder_s0").mkdir()
    (sweep / "5_sinusoidal_copy_encoder_s0" / "results.json").write_text('{"status": "ok", "label": "sinus')
    result(sweep / "7_odd", lengths=[0.5])  # JSON, but not the shape of a results.json
    jobs = [
        {"number": 0, "label": "rope", "task": "copy", "model": "encoder", "seed": 0, "run_dir": "0_rope_copy_encoder_s0", "state": "reused"},
        {"number": 1, "label": "alibi", "task": "copy", "model": "encoder", "seed": 0, "run_dir": "1_alibi_copy_encoder_s0", "state": "reused"},
        {"number": 2, "label": "t5", "task": "copy", "model": "encoder", "seed": 0, "run_dir": "2_t5_copy_encoder_s0", "state": "planned"},
        {"number": 4, "label": "learned", "task": "copy", "model": "encoder", "seed": 0, "run_dir": "4_learned_copy_encoder_s0", "state": "planned"},
        {"number": 6, "label": "xpos", "task": "copy", "model": "decoder", "seed": 0, "run_dir": "6_xpos_copy_decoder_s0",
         "state": "skipped", "reason": "xpos needs a causal model"},
    ]
    (sweep / "sweep.json").write_text(json.dumps({"command": "posbench train -m", "jobs": jobs}))
    (tmp_path / "twins" / "abc").mkdir(parents=True)  # a twin cache entry: never a run
    (tmp_path / "twins" / "abc" / "results.json").write_text("not json")
    text = write_report(tmp_path, plots=False)
    problems = text.split("## Runs not ok, jobs not complete")[1]
    assert "4 runs (2 ok) over 2 seeds" in text
    assert "- failed: `sweep/1_alibi_copy_encoder_s0` (alibi, copy / encoder, seed 0): RuntimeError: boom" in problems
    assert "- diverged: `sweep/2_t5_copy_encoder_s0` (t5, copy / encoder, seed 0) at step 123" in problems
    assert "- twin diverged: the no-PE twin of `sweep/3_rope_copy_encoder_s1` (rope, copy / encoder, seed 1) at step 7" in problems
    assert ("- incomplete: job 4 `sweep/4_learned_copy_encoder_s0` (learned, copy / encoder, seed 0): "
            "no results.json yet (running, interrupted or killed)") in problems
    assert "- skipped: job 6 `sweep/6_xpos_copy_decoder_s0` (xpos, copy / decoder, seed 0): xpos needs a causal model" in problems
    assert "- 2 jobs reused from an earlier launch" in problems
    assert "- unreadable: `sweep/5_sinusoidal_copy_encoder_s0/results.json`: not JSON" in problems
    assert "- unreadable: `sweep/7_odd/results.json`: unexpected lengths" in problems
    assert "twins" not in problems and "incomplete: job 2" not in problems
    assert "| task | rope | alibi | t5 | no-PE twin |" in text
    assert "| copy | 0.500 ± 0.000 (n=2) | — | — | 0.300 (n=1) | 0.062 |" in text  # only ok runs count
    assert "| copy | +0.200 (n=1) |" in text  # Δ only where the twin is ok


def test_csv_has_one_row_per_task_model_and_label(tmp_path):
    result(tmp_path / "a", acc=0.9, twin=0.3)
    result(tmp_path / "b", label="alibi", status="failed", error="x")
    result(tmp_path / "c", label="rope(scale=4) d_model=128", task="reverse", acc=0.4)
    write_report(tmp_path, plots=False)
    rows = rows_of(tmp_path / "report.csv")
    assert set(rows) == {("copy", "encoder", "rope"), ("copy", "encoder", "alibi"), ("reverse", "encoder", "rope(scale=4) d_model=128")}
    assert rows[("copy", "encoder", "alibi")]["n"] == "0" and rows[("copy", "encoder", "alibi")]["mean"] == ""
    assert float(rows[("reverse", "encoder", "rope(scale=4) d_model=128")]["mean"]) == 0.4
    assert list(rows[("copy", "encoder", "rope")])[:10] == [
        "task", "model", "label", "metric", "mean", "std", "n", "twin_mean", "delta_vs_twin", "chance"]


def test_plots_are_png_images(tmp_path):
    from matplotlib.image import imread

    for seed in (0, 1):
        result(tmp_path / f"r{seed}", label="rope(scale=4)", seed=seed, acc=0.8 + seed / 10, twin=0.3, pe_off={"acc": 0.2, "seq_acc": 0.1})
        result(tmp_path / f"n{seed}", label="none", seed=seed, acc=0.3)
    out = tmp_path / "report out"
    text = write_report(tmp_path, out=out)
    names = ["acc_vs_length_copy_encoder.png", "with_without_pe.png"]
    assert sorted(path.name for path in out.iterdir()) == sorted([*names, "report.csv", "report.md"])
    for name in names:
        assert (out / name).stat().st_size > 1000 and f"![{name}]({name})" in text
        image = imread(out / name)
        assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert (out / "report.md").read_text() == text and not (tmp_path / "report.md").exists()


def test_plot_names_are_sanitised(tmp_path):
    result(tmp_path / "r", task="copy/odd task", model="enc:oder")
    assert "acc_vs_length_copy_odd_task_enc_oder.png" in write_report(tmp_path)


@pytest.mark.parametrize("args, message", [
    (["{tmp}", "--metric", "bleu"], "unknown metric 'bleu'; these results hold: acc, seq_acc, pe_off, pe_off.seq_acc, len5, len5.seq_acc, len20, len20.seq_acc"),
    (["{tmp}", "--metric", "len99"], "unknown metric 'len99'"),
    (["{tmp}/empty"], "no results.json under"),
    (["{tmp}/missing"], "no such folder"),
    (["{tmp}/r/results.json"], "not a folder"),
    ([], "the following arguments are required: DIR (see posbench report --help)"),
    (["{tmp}", "--plots"], "unrecognized arguments: --plots"),
    (["{tmp}", "--out", "{tmp}/r/results.json"], "cannot write the report into"),
])
def test_bad_arguments_are_one_line_config_errors(tmp_path, args, message):
    result(tmp_path / "r", pe_off={"acc": 0.1, "seq_acc": 0.0})
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(ConfigError) as caught:
        main([arg.format(tmp=tmp_path) for arg in args])
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert not (tmp_path / "report.md").exists()


def test_main_prints_the_report_and_imports_no_torch(tmp_path, capsys):
    result(tmp_path / "r", acc=0.75, twin=0.25)
    assert main([str(tmp_path), "--no-plots"]) == 0
    printed = capsys.readouterr().out
    assert "| copy | 0.750 (n=1) | 0.250 (n=1) | 0.062 | 0.300 |" in printed
    assert printed == (tmp_path / "report.md").read_text() and not list(tmp_path.glob("*.png"))
    code = f"import sys; from posbench.reporting import main; main([{str(tmp_path)!r}]); print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'hydra')))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[-1] == "[]"


def test_a_single_run_folder_and_a_file_without_label(tmp_path):
    data = result(tmp_path, label="alibi", acc=0.5, twin=0.25)
    del data["label"]  # written before labels existed: the encoding names the column
    (tmp_path / "results.json").write_text(json.dumps(data))
    text = write_report(tmp_path, plots=False)
    assert "1 run (1 ok) over 1 seed" in text and "| task | alibi | no-PE twin |" in text
    assert "| copy | 0.500 (n=1) | 0.250 (n=1) | 0.062 | 0.300 |" in text


def test_pe_off_of_a_model_without_encoding_is_its_own_number_unless_it_has_one_elsewhere():
    from posbench.reporting.metric import Metric

    pe_off = Metric("acc", "pe_off")
    assert pe_off.of({"encoding": "none", "metrics": {"acc": 0.9}, "pe_off": None}) == 0.9
    # encoding=none with an encoding elsewhere (seq2seq's decoder_encoding): its own PE-off number
    assert pe_off.of({"encoding": "none", "metrics": {"acc": 0.9}, "pe_off": {"acc": 0.2}}) == 0.2

"""posbench analyze: position probes, recorded attention weights, attention distance, PE off per
evaluation length, and the command (bad input, a tiny trained run end to end)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import TINY, compose
from posbench import cli, config, experiment
from posbench.analysis.attention import attention_maps, distances, mean_distance, uniform_distance
from posbench.analysis.probe import features, position_labels, probe, probe_positions
from posbench.encodings import ENCODINGS, AttentionShape
from posbench.models.attention import CrossAttention, SelfAttention, merge_heads, recording_attention
from posbench.reporting.metric import Metric, available, parse
from posbench.training.evaluate import PE_OFF_EXAMPLES, evaluate_pe_off, first_examples, score
from posbench.training.loop import load_checkpoint


def tiny_model(*overrides: str, tmp="/tmp/unused"):
    cfg = config.normalise(compose([*TINY, "model.layers=2", *overrides], tmp))
    task = config.build_task(cfg)
    torch.manual_seed(0)
    return config.build_model(cfg, task).eval(), task


# ---- 1. the probe -------------------------------------------------------------------------------
def labels(sequences: int = 400, positions: int = 10) -> torch.Tensor:
    return position_labels(sequences, positions)


def test_probe_reads_a_one_hot_code_exactly():
    y, y_test = labels(), labels(50)
    one_hot = torch.nn.functional.one_hot(y, 10).double()
    scores = probe(one_hot, y, torch.nn.functional.one_hot(y_test, 10).double(), y_test, 10)
    assert scores["r2"] == pytest.approx(1.0, abs=1e-3) and scores["acc"] == 1.0


def test_probe_r2_of_a_noisy_code_is_the_known_fraction_of_variance():
    """x = position + N(0, s²) with s² = var(position): the best linear R² is var / (var + s²) = 1/2."""
    generator = torch.Generator().manual_seed(0)
    y, y_test = labels(2000), labels(2000)
    noise = math.sqrt((10**2 - 1) / 12)
    x = y.double()[:, None] + noise * torch.randn(len(y), 1, generator=generator, dtype=torch.float64)
    x_test = y_test.double()[:, None] + noise * torch.randn(len(y_test), 1, generator=generator, dtype=torch.float64)
    assert probe(x, y, x_test, y_test, 10)["r2"] == pytest.approx(0.5, abs=0.02)


def test_probe_of_position_free_features_cannot_beat_the_mean():
    generator = torch.Generator().manual_seed(1)
    y, y_test = labels(500), labels(500)
    x, x_test = (torch.randn(len(y), 16, generator=generator, dtype=torch.float64) for _ in range(2))
    scores = probe(x, y, x_test, y_test, 10)
    assert -0.02 < scores["r2"] < 0.01 and abs(scores["acc"] - 0.1) < 0.03


def test_softmax_probe_classifies_a_one_dimensional_code_that_least_squares_cannot():
    """Position along one direction: a softmax carves it into intervals; a ridge one-vs-rest
    argmax (why it is not used) picks only the two ends."""
    y = labels(100)
    x = y.double()[:, None]
    assert probe(x, y, x, y, 10)["acc"] >= 0.99
    from posbench.analysis.probe import ridge_fit, ridge_predict

    one_vs_rest = ridge_predict(ridge_fit(x, torch.nn.functional.one_hot(y, 10).double()), x).argmax(1)
    assert set(one_vs_rest.tolist()) <= {0, 9}


def test_nope_encoder_is_permutation_equivariant_so_its_probe_cannot_beat_the_mean():
    model, task = tiny_model("model=encoder", "encoding=none")
    generator = torch.Generator().manual_seed(0)
    src, tgt = task.sample(8, 6, generator)
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    plain, permuted = features(model, (src, tgt)), features(model, (src[:, perm], task.target(src[:, perm])))
    assert plain["net"]["tokens"] == "source"
    for a, b in zip(plain["net"]["layers"], permuted["net"]["layers"]):  # row = sequence * 6 + position
        assert torch.allclose(b.view(8, 6, -1), a.view(8, 6, -1)[:, perm], atol=1e-5)
    train, test = task.sample(128, 6, generator), task.sample(128, 6, generator)
    result = probe_positions(model, train, test)["net"]
    assert len(result["r2"]) == 3  # the embedding output and after each of the 2 blocks
    assert max(result["r2"]) < 0.03 and max(result["acc"]) < result["chance"] + 0.06


def test_an_absolute_encoding_is_read_off_the_embedding_output():
    model, task = tiny_model("model=encoder", "encoding=sinusoidal")
    generator = torch.Generator().manual_seed(0)
    result = probe_positions(model, task.sample(64, 6, generator), task.sample(64, 6, generator))["net"]
    assert result["r2"][0] > 0.95 and result["acc"][0] > 0.95


# ---- 2. attention weights -----------------------------------------------------------------------
CASES = [("none", {}), ("rope", {}), ("alibi", {}), ("t5", {}), ("xl", {}), ("shaw", {"values": True})]


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("name, options", CASES)
def test_recorded_weights_reproduce_the_attention_output(name, options, causal):
    shape = AttentionShape(16, 2, 1, causal)
    torch.manual_seed(0)
    encoding = ENCODINGS.build({"name": name, **options}, shape)
    attention = SelfAttention(16, 2).eval()
    x, pos = torch.randn(3, 7, 16), torch.arange(7)[None]
    with torch.no_grad():
        plain = attention(x, encoding, pos, causal, 0)
        with recording_attention(attention) as records:
            recorded = attention(x, encoding, pos, causal, 0)
        assert torch.equal(recorded, plain)  # recording changes no number
        (weights,) = records[""]
        assert weights.shape == (3, 2, 7, 7) and torch.allclose(weights.sum(-1), torch.ones(3, 2, 7))
        if causal:
            assert weights.triu(1).abs().max() == 0
        v = attention.qkv(x).view(3, 7, 3, 2, -1).permute(2, 0, 3, 1, 4)[2]
        y = weights @ v
        extra = encoding.value(weights, pos, pos, 0)
        y = y if extra is None else y + extra
        assert torch.allclose(attention.out(merge_heads(y)), plain, atol=1e-5)
    assert attention.record is None  # recording ends with the block


def test_recorded_cross_attention_weights_reproduce_its_output():
    shape = AttentionShape(16, 2, 1, False)
    encoding = ENCODINGS.build({"name": "rope"}, shape)
    torch.manual_seed(0)
    attention = CrossAttention(16, 2).eval()
    x, memory = torch.randn(2, 4, 16), torch.randn(2, 6, 16)
    with torch.no_grad(), recording_attention(attention) as records:
        out = attention(x, memory, encoding, torch.arange(4)[None], torch.arange(6)[None], 0)
        v = attention.kv(memory).chunk(2, dim=-1)[1].view(2, 6, 2, -1).transpose(1, 2)
        assert torch.allclose(attention.out(merge_heads(records[""][0] @ v)), out, atol=1e-5)


def test_mean_distance_of_hand_built_attention():
    assert float(mean_distance(torch.eye(6))) == 0.0
    for n in (1, 5, 12):
        causal = torch.ones(n, n).tril()
        assert float(mean_distance(causal / causal.sum(-1, keepdim=True))) == pytest.approx((n - 1) / 4)
        assert uniform_distance(n, causal=True) == pytest.approx((n - 1) / 4)
        assert uniform_distance(n, causal=False) == pytest.approx((n * n - 1) / (3 * n))
    first = torch.zeros(5, 5)
    first[:, 0] = 1  # every query on the first key: distance i, mean 2
    assert float(mean_distance(first)) == pytest.approx(2.0)
    assert mean_distance(torch.eye(4).expand(3, 2, 4, 4)).shape == (3, 2)


def test_attention_maps_and_distances_of_a_model():
    model, task = tiny_model("model=decoder", "encoding=alibi")
    batch = task.sample(4, 5, torch.Generator().manual_seed(0))
    maps = attention_maps(model, batch, index=1)
    assert maps.shape == (2, 4, 10, 10)  # layers, heads, source + SEP + target - 1
    assert torch.allclose(maps.sum(-1), torch.ones(2, 4, 10)) and maps.triu(1).abs().max() == 0
    result = distances(model, batch)["net"]
    assert result["tokens"] == 10 and result["uniform"] == pytest.approx(9 / 4)
    one = distances(model, tuple(part[1:2] for part in batch))["net"]
    assert one["heads"] == [[round(float(d), 4) for d in mean_distance(layer.double())] for layer in maps]


# ---- 3. PE off per evaluation length --------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny rope encoder with its twin (12 steps), trained once for the tests below."""
    root = tmp_path_factory.mktemp("analyze")
    cfg = compose([*TINY, "encoding=rope", "trainer.threads=1"], root / "twins")
    results = experiment.run(cfg, root / "run")
    return root / "run", cfg, results


def test_pe_off_per_length_is_scored_like_pe_off(trained):
    run_dir, cfg, results = trained
    assert set(results["pe_off_lengths"]) == {"3", "5", "8"}
    saved = json.loads((run_dir / "results.json").read_text())
    assert saved["pe_off_lengths"] == results["pe_off_lengths"] and "pe_off_sizes" not in saved
    cfg = config.normalise(cfg)
    task = config.build_task(cfg)
    model = config.build_model(cfg, task)
    model.load_state_dict(load_checkpoint(run_dir / "checkpoint_rope.pt")["model"])
    test_set, length_sets = task.test_set("cpu"), task.length_sets("cpu")
    again = evaluate_pe_off(model, task, test_set, length_sets)
    assert again["pe_off"] == saved["pe_off"] and again["pe_off_lengths"] == saved["pe_off_lengths"]
    with model.encoding_off():  # the path pe_off always took, at one length
        assert score(model, test_set, task) == saved["pe_off"]
        assert score(model, first_examples(length_sets[8], PE_OFF_EXAMPLES), task) == saved["pe_off_lengths"]["8"]


def test_first_examples_cuts_across_batches():
    batches = [(torch.arange(6).view(3, 2), torch.zeros(3, 1)), (torch.arange(4).view(2, 2), torch.zeros(2, 1))]
    kept = first_examples(batches, 4)
    assert [src.shape[0] for src, _ in kept] == [3, 1] and first_examples(batches, 10)[1][0].shape[0] == 2


def test_metric_names_for_pe_off_per_length():
    run = {"metrics": {"acc": 0.9, "seq_acc": 0.5}, "lengths": {"20": {"acc": 0.4, "seq_acc": 0.1}},
           "pe_off": {"acc": 0.2, "seq_acc": 0.0}, "pe_off_lengths": {"20": {"acc": 0.15, "seq_acc": 0.01}}}
    assert available([run]) == ["acc", "seq_acc", "pe_off", "pe_off.seq_acc", "len20", "len20.seq_acc", "pe_off.len20", "pe_off.len20.seq_acc"]
    metric = parse("pe_off.len20", [run])
    assert metric == Metric("acc", "length", "20", off=True) and metric.name == "pe_off.len20"
    assert metric.of(run) == 0.15 and parse("pe_off.len20.seq_acc", [run]).of(run) == 0.01
    assert metric.with_pe.name == "len20" and metric.with_pe.of(run) == 0.4
    assert parse("pe_off.seq_acc", [run]) == Metric("seq_acc", "pe_off")
    assert metric.of({**run, "pe_off": None, "pe_off_lengths": None}) == 0.4  # no encoding: its own number
    assert metric.of({key: value for key, value in run.items() if key != "pe_off_lengths"}) is None  # older results
    with pytest.raises(Exception, match="unknown metric 'pe_off.len5'"):
        parse("pe_off.len5", [run])


# ---- the command ----------------------------------------------------------------------------------
def run_cli(capsys, *args):
    code = cli.main(["analyze", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


def snapshot(folder):
    return {path.relative_to(folder): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


def test_analyze_a_tiny_run_end_to_end(trained, capsys):
    run_dir, _, _ = trained
    code, out, err = run_cli(capsys, run_dir, "--examples", 16, "--lengths", "5,8", "--device", "cpu")
    assert code == 0, err
    assert "position probe, net" in out and "none (no-PE twin)" in out
    saved = json.loads((run_dir / "results.json").read_text())
    analysis = saved["analysis"]
    assert analysis["settings"]["lengths"] == [5, 8] and analysis["settings"]["probe_length"] == 5
    for role, label in (("run", "rope"), ("twin", "none")):
        result = analysis[role]
        assert result["label"] == label
        assert len(result["probe"]["net"]["r2"]) == 3 and result["probe"]["net"]["positions"] == 5
        assert set(result["attention_distance"]["net"]) == {"5", "8"}
        assert len(result["attention_distance"]["net"]["8"]["heads"]) == 2
        events = EventAccumulator(str(run_dir / "tb" / "analysis" / label)).Reload()
        tags = events.Tags()
        assert {"analysis/probe_r2/net", "analysis/probe_acc/net", "analysis/attention_distance/net/len8"} <= set(tags["scalars"])
        assert [e.step for e in events.Scalars("analysis/probe_r2/net")] == [0, 1, 2]
        assert {"analysis/position_probe", "analysis/attention_distance"} <= set(tags["images"])
    # a second analysis replaces the first: one events file per model, results.json otherwise unchanged
    before = {key: value for key, value in saved.items() if key != "analysis"}
    assert run_cli(capsys, run_dir, "--examples", 16, "--device", "cpu", "--no-twin")[0] == 0
    again = json.loads((run_dir / "results.json").read_text())
    assert {key: value for key, value in again.items() if key != "analysis"} == before
    assert again["analysis"]["twin"] is None and again["analysis"]["settings"]["lengths"] == [5, 8]
    assert len(list((run_dir / "tb" / "analysis" / "rope").glob("events.out.tfevents.*"))) == 1
    from posbench.reporting.collect import collect

    found = collect(run_dir)
    assert len(found.runs) == 1 and not found.unreadable


def test_analyze_a_no_pe_run_reads_its_checkpoint_from_the_twin_cache(tmp_path, capsys):
    cfg = compose([*TINY, "encoding=none", "model=decoder", "trainer.max_steps=4", "trainer.threads=1"], tmp_path / "twins")
    experiment.run(cfg, tmp_path / "run")
    code, out, err = run_cli(capsys, tmp_path / "run", "--examples", 8, "--device", "cpu")
    assert code == 0, err
    analysis = json.loads((tmp_path / "run" / "results.json").read_text())["analysis"]
    assert analysis["run"]["label"] == "none" and analysis["twin"] is None and "own twin" in analysis["twin_not_analysed"]
    assert not any((tmp_path / "twins").rglob("*analysis*"))  # the shared cache is never written to


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """A 2-step rope run and its twin cache, copied by each bad-input case."""
    root = tmp_path_factory.mktemp("small")
    experiment.run(compose([*TINY, "encoding=rope", "trainer.max_steps=2", "trainer.threads=1"], root / "twins"), root / "run")
    return root


def damaged_copy(small_run, tmp_path, how: str | None):
    """A copy of ``small_run`` (its results.json naming the copied twin), damaged as ``how`` says."""
    shutil.copytree(small_run, tmp_path, symlinks=True, dirs_exist_ok=True)
    path = tmp_path / "run" / "results.json"
    saved = json.loads(path.read_text())
    twin = tmp_path / "twins" / Path(saved["provenance"]["twin"]).name
    saved["provenance"]["twin"] = str(twin)
    if how == "status":
        saved |= {"status": "failed", "error": "RuntimeError: boom"}
    path.write_text(json.dumps(saved))
    if how == "checkpoint":
        (tmp_path / "run" / "checkpoint_rope.pt").unlink()
    elif how == "twin":
        (twin / "checkpoint_none.pt").unlink()


@pytest.mark.parametrize(
    "args, how, message",
    [
        (["{missing}"], None, "no such folder"),
        (["{empty}"], None, "not a run folder of posbench train (no results.json)"),
        (["{run}", "--frobnicate"], None, "unrecognized arguments: --frobnicate"),
        (["{run}", "--lengths", "0"], None, "argument --lengths: 0 must be at least 1"),
        (["{run}", "--examples", "many"], None, "'many' is not a whole number"),
        (["{run}", "--device", "tpu"], None, "--device tpu: must be auto, cpu, cuda or cuda:N"),
        (["{run}"], "status", "holds a run that failed (RuntimeError: boom): no trained model"),
        (["{run}"], "checkpoint", "has no checkpoint"),
        (["{run}"], "twin", "--no-twin analyses the run alone"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_written(small_run, tmp_path, capsys, args, how, message):
    run_dir = tmp_path / "run"
    damaged_copy(small_run, tmp_path, how)
    (tmp_path / "empty").mkdir()
    before = snapshot(tmp_path)
    args = [arg.format(missing=tmp_path / "missing", empty=tmp_path / "empty", run=run_dir) for arg in args]
    code, out, err = run_cli(capsys, *args)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("posbench: error: ") and message in err, err
    assert snapshot(tmp_path) == before


def test_every_stack_of_an_encoder_decoder_is_probed_and_measured():
    model, task = tiny_model("model=seq2seq", "encoding=rope")
    generator = torch.Generator().manual_seed(0)
    result = probe_positions(model, task.sample(16, 4, generator), task.sample(16, 4, generator))
    assert {name: (entry["tokens"], entry["positions"]) for name, entry in result.items()} == {
        "encoder": ("source", 4), "net": ("input", 4)}  # the decoder reads SEP + the target but its last token
    measured = distances(model, task.sample(4, 6, generator))
    assert measured["encoder"]["tokens"] == 6 and measured["net"]["tokens"] == 6
    assert measured["encoder"]["uniform"] == pytest.approx(35 / 18, abs=1e-4) and measured["net"]["uniform"] == 1.25
    assert attention_maps(model, task.sample(2, 6, generator)).shape[-1] == 6  # default: the encoder's

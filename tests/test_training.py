"""Runs in-process: results.json contents, determinism, resume after an interruption, the twin
cache, TensorBoard events and HParams, validation before training, atomic writes."""

import json

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import TINY, compose, same_weights
from posbench import experiment
from posbench.errors import ConfigError
from posbench.training import files


def test_results_json_has_every_documented_field(tiny_cfg, tmp_path):
    results = experiment.run(tiny_cfg("encoding=rope", "task=reverse"), tmp_path / "run")
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved == json.loads(json.dumps(results))
    assert {"encoding", "task", "model", "seed", "metrics", "lengths", "pe_off", "nope", "config", "chance"} <= set(saved)
    assert (saved["encoding"], saved["task"], saved["model"]) == ("rope", "reverse", "encoder")
    assert set(saved["lengths"]) == {"3", "5", "8"}
    for metrics in [saved["metrics"], saved["pe_off"], saved["nope"]["metrics"], *saved["lengths"].values()]:
        assert set(metrics) >= {"acc", "seq_acc"} and all(0.0 <= v <= 1.0 for v in metrics.values())
    assert set(saved["nope"]["lengths"]) == {"3", "5", "8"}
    assert saved["chance"] == pytest.approx(1 / 16)


def test_same_seed_gives_identical_numbers(tmp_path):
    a = experiment.run(compose([*TINY, "encoding=alibi"], tmp_path / "twins_a"), tmp_path / "a")
    b = experiment.run(compose([*TINY, "encoding=alibi"], tmp_path / "twins_b"), tmp_path / "b")
    for key in ("metrics", "lengths", "pe_off", "nope"):
        assert a[key] == b[key]
    c = experiment.run(compose([*TINY, "encoding=alibi", "seed=1"], tmp_path / "twins_a"), tmp_path / "c")
    assert c["metrics"] != a["metrics"] or c["lengths"] != a["lengths"]


@pytest.mark.parametrize(
    "overrides, label",
    [(["encoding=t5"], "t5"), (["encoding=spe", "model.dropout=0.1"], "spe")],  # spe, dropout: torch's global RNG
    ids=["t5", "spe-dropout"],
)
def test_interrupted_run_resumes_to_bit_identical_weights(overrides, label, tiny_cfg, tmp_path, monkeypatch):
    cfg = tiny_cfg(*overrides, "compare_nope=false")
    straight = experiment.run(cfg, tmp_path / "straight")

    real_step = torch.optim.AdamW.step
    calls = {"n": 0}

    def crash_after_eight(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 8:
            raise KeyboardInterrupt
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", crash_after_eight)
    with pytest.raises(KeyboardInterrupt):
        experiment.run(cfg, tmp_path / "resumed")
    assert not (tmp_path / "resumed" / "results.json").exists()
    assert torch.load(tmp_path / "resumed" / f"checkpoint_{label}.pt", weights_only=True)["step"] == 6
    monkeypatch.setattr(torch.optim.AdamW, "step", real_step)
    resumed = experiment.run(cfg, tmp_path / "resumed")
    assert resumed["metrics"] == straight["metrics"] and resumed["lengths"] == straight["lengths"]
    assert same_weights(tmp_path / "resumed" / f"checkpoint_{label}.pt", tmp_path / "straight" / f"checkpoint_{label}.pt")


def test_checkpoint_of_another_config_is_refused(tiny_cfg, tmp_path):
    experiment.run(tiny_cfg("encoding=rope", "compare_nope=false"), tmp_path / "run")
    with pytest.raises(ConfigError, match=r"another configuration \(trainer.lr: 0.002 there, 0.01 here\)"):
        experiment.run(tiny_cfg("encoding=rope", "compare_nope=false", "trainer.lr=0.01"), tmp_path / "run")


def test_twin_is_trained_once_and_reused(tiny_cfg, tmp_path, monkeypatch):
    trained = []
    real = experiment.train_and_evaluate
    monkeypatch.setattr(
        experiment, "train_and_evaluate", lambda cfg, *a: trained.append(cfg["encoding"]["name"]) or real(cfg, *a)
    )
    first = experiment.run(tiny_cfg("encoding=rope"), tmp_path / "r1")
    second = experiment.run(tiny_cfg("encoding=alibi"), tmp_path / "r2")
    none = experiment.run(tiny_cfg("encoding=none"), tmp_path / "r3")
    assert trained == ["rope", "none", "alibi"]
    assert first["nope"] == second["nope"]
    assert none["metrics"] == first["nope"]["metrics"] and none["nope"] is None and none["pe_off"] is None
    other = experiment.run(tiny_cfg("encoding=rope", "seed=3"), tmp_path / "r4")
    assert trained[-2:] == ["rope", "none"] and other["nope"] != first["nope"]


def test_tensorboard_has_run_and_twin_with_the_same_curves_and_one_hparams_session_each(tiny_cfg, tmp_path):
    run_dir = tmp_path / "run"
    experiment.run(tiny_cfg("encoding=learned"), run_dir)
    run = "learned"
    assert sorted(p.name for p in (run_dir / "tb").iterdir()) == sorted(["none", run])
    assert (run_dir / "tb" / "none").is_symlink()  # the twin's events stay in the cache
    tags = {}
    for name in (run, "none"):
        folder = run_dir / "tb" / name
        assert all(p.is_file() for p in folder.iterdir()), "stray sub-run folder"
        events = EventAccumulator(str(folder)).Reload()
        tags[name] = set(events.Tags()["scalars"])
        # a session per run and no experiment-wide summary, which would hide the other runs' hparams
        assert set(events.PluginTagToContent("hparams")) == {"_hparams_/session_start_info", "_hparams_/session_end_info"}
        assert [event.step for event in events.Scalars("length/acc")] == [3, 5, 8]
    assert tags[run] - tags["none"] == {"hparam/acc_pe_off", "hparam/acc_twin"}
    assert {"train/loss", "test/acc", "length/acc", "hparam/acc", "hparam/len_3_acc", "hparam/len_8_acc"} <= tags["none"]


@pytest.mark.parametrize(
    "override, message",
    [
        ("trainer.lr=0", "trainer.lr"),
        ("trainer.max_steps=0", "max_steps"),
        ("model.heads=5", "divisible"),
        ("encoding.max_len=12", "represents 12 positions but this run needs 17"),
        ("trainer.device=tpu", "trainer.device"),
    ],
)
def test_bad_values_fail_before_training(tiny_cfg, tmp_path, override, message, monkeypatch):
    monkeypatch.setattr(experiment, "fit", lambda *a, **k: pytest.fail("training started"))
    with pytest.raises(ConfigError, match=message):
        experiment.run(tiny_cfg("encoding=learned", override), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path):
    path = tmp_path / "results.json"
    files.write_json(path, {"old": 1})

    class Unserialisable:
        pass

    with pytest.raises(TypeError):
        files.write_json(path, {"new": Unserialisable()})
    assert json.loads(path.read_text()) == {"old": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_weight_decay_spares_encoding_parameters_biases_and_norms():
    from posbench.models import MODELS
    from posbench.training.loop import parameter_groups

    model = MODELS.get("encoder")(8, {"name": "t5"}, d_model=16, layers=1, heads=2)
    decay, no_decay = parameter_groups(model, 0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    decayed = {id(p) for p in decay["params"]}
    assert id(model.encoding.table.weight) not in decayed
    assert id(model.net.blocks[0].attn.qkv.weight) in decayed
    assert all(p.dim() >= 2 for p in decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))

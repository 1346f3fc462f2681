"""What TensorBoard lists, read with TensorBoard's own event loader (which follows the twin links as
its server does): each distinct run once, the twin once per sweep (and beside a single run), one
HParams session per run with its label and typed options and no experiment-wide summary (which
would hide every other run's hparams), and accuracy against evaluation length as a curve."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import TINY
from tensorboard.backend.event_processing.plugin_event_multiplexer import (
    EventMultiplexer,
)
from tensorboard.plugins.hparams import metadata
from tensorboard.util import tensor_util


def posbench(cwd, *args):
    out = subprocess.run(
        [sys.executable, "-m", "posbench", "train", *args, "twin_cache=twins"], cwd=cwd, capture_output=True,
        text=True, timeout=600, env={**os.environ},
    )
    assert out.returncode == 0, out.stderr
    return out


def loaded(logdir) -> EventMultiplexer:
    mux = EventMultiplexer()
    mux.AddRunsFromDirectory(str(logdir))
    mux.Reload()
    return mux


def session_hparams(mux: EventMultiplexer, run: str) -> dict:
    content = mux.PluginRunToTagToContent(metadata.PLUGIN_NAME)[run]
    info = metadata.parse_session_start_info_plugin_data(content[metadata.SESSION_START_INFO_TAG])
    return {key: value.WhichOneof("kind") and getattr(value, value.WhichOneof("kind")) for key, value in info.hparams.items()}


def test_a_sweep_lists_each_run_once_and_its_twin_once(tmp_path):
    posbench(tmp_path, "-m", "encoding=none,rope,alibi", "encoding.scale=1,4", "sweep.skip_invalid=true", *TINY)
    sweep_dir = next((tmp_path / "outputs" / "sweeps").glob("*/*"))
    mux = loaded(sweep_dir)
    runs = sorted(mux.Runs())
    # rope(scale=1), rope(scale=4) and the twin; none and alibi have no scale (skipped as invalid)
    twin = [run for run in runs if run.startswith("twins/")]
    assert len(runs) == 3 and len(twin) == 1, runs
    assert [run.split("/")[0][:1] for run in runs if run not in twin] == ["2", "3"]
    assert twin[0].startswith("twins/s0_copy_encoder_")  # the twin's seed first
    hparams = {run: session_hparams(mux, run) for run in runs}
    assert sorted(h["label"].split(" ")[0] for h in hparams.values()) == ["none", "rope", "rope(scale=4)"]
    assert {h["encoding.scale"] for h in hparams.values() if h["encoding"] == "rope"} == {1.0, 4.0}
    assert all(h["model.d_model"] == 32.0 and h["seed"] == 0.0 for h in hparams.values())  # numbers, not text
    assert all(h["task.train_lengths"] == "[1,5]" for h in hparams.values())
    for run in runs:
        tags = mux.PluginRunToTagToContent(metadata.PLUGIN_NAME)[run]
        assert metadata.EXPERIMENT_TAG not in tags  # no run hides the others' hparams
        scalars = mux.GetAccumulator(run).Tags()["tensors"]
        assert {"hparam/acc", "hparam/seq_acc", "hparam/len_3_acc", "hparam/len_8_acc", "length/acc"} <= set(scalars)
        curve = [event.step for event in mux.Tensors(run, "length/acc")]
        assert curve == [3, 5, 8]  # accuracy against evaluation length: the length is the step
    runs_with_pe = [run for run in runs if run not in twin]
    for run in runs_with_pe:
        tags = set(mux.GetAccumulator(run).Tags()["tensors"])
        assert {"hparam/acc_pe_off", "hparam/acc_twin"} <= tags
        twin_acc = tensor_util.make_ndarray(mux.Tensors(run, "hparam/acc_twin")[0].tensor_proto).item()
        recorded = json.loads((sweep_dir / run.split("/")[0] / "results.json").read_text())["nope"]["metrics"]["acc"]
        assert abs(twin_acc - recorded) < 1e-6
    # the whole outputs folder: the same twin is listed from the cache too, but not once per run
    assert sum(run.endswith("tb/none") or "/twins/" in f"/{run}" for run in loaded(tmp_path).Runs()) == 2


def test_a_single_run_folder_shows_the_run_beside_its_twin(tmp_path):
    posbench(tmp_path, "encoding=alibi", "hydra.run.dir=run", *TINY)
    mux = loaded(tmp_path / "run")
    runs = sorted(mux.Runs())
    assert runs == ["tb/alibi", "tb/none"]
    assert (tmp_path / "run" / "tb" / "none").is_symlink()
    assert session_hparams(mux, "tb/none")["encoding"] == "none"
    assert session_hparams(mux, "tb/alibi")["encoding.learned_slopes"] is False  # a boolean stays boolean


def test_two_twins_with_one_name_are_both_linked_once(tmp_path):
    from posbench.tensorboard_log import link_twin

    cfg = {"encoding": {"name": "none"}, "model": {"name": "encoder"}, "task": {"name": "copy"}, "trainer": {}, "seed": 0}
    events = []
    for key in ("aaaaaaaa11", "bbbbbbbb22"):  # e.g. the twins of trainer.threads=1 and 2: the same label
        folder = tmp_path / "cache" / key / "tb" / "none"
        folder.mkdir(parents=True)
        events.append(folder)
    sweep = tmp_path / "sweep"
    for folder in [*events, *events]:  # each linked twice (two jobs need each twin)
        link_twin(folder, cfg, tmp_path / "run", sweep)
    links = sorted((sweep / "twins").iterdir())
    assert [link.name for link in links] == ["s0_copy_encoder", "s0_copy_encoder-bbbbbbbb"]
    assert [link.resolve() for link in links] == [folder.resolve() for folder in events]

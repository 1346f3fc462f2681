"""``posbench plot`` and the pictures a run adds to TensorBoard (``posbench.plotting``): every
registered encoding is drawn on a model it is valid for; the drawn numbers are checked where they
are known exactly (the sinusoidal linear-offset property, ALiBi's slopes, a run's learned table);
bad input is one line, exit code 2, nothing written."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch

from conftest import TINY, compose
from posbench import cli, config, experiment
from posbench import plotting
from posbench.encodings import ENCODINGS
from posbench.encodings.alibi import alibi_slopes
from posbench.plotting import command
from posbench.plotting.core import KINDS

#: Small models: every picture of an encoding is cheap to draw.
SMALL = ["model.d_model=32", "model.layers=2", "model.heads=2", "trainer.device=cpu"]
PNG = b"\x89PNG\r\n\x1a\n"


def valid_for(name: str) -> list[str]:
    """A model and task the encoding is defined for (as tests/test_zoo.py chooses them): 2D
    encodings on a ViT's grid, M-RoPE's 3 axes on the prefix captioner, an encoding that reads a
    timeline on task=sync, a causal-only one in a decoder."""
    cls = ENCODINGS.get(name)
    if cls.axes == 2:
        return ["model=vit", "task=quadrant", "task.image_size=16", "task.eval_sizes=[16]"]
    if cls.axes == 3:
        return ["model=prefix_captioner", "task=shapes_caption", "task.image_size=12", "task.eval_sizes=[12]"]
    if cls.reads_time:
        return ["task=sync"]
    if not cls.supports_bidirectional:
        return ["model=decoder"]
    return []


def pictures_of(*overrides: str) -> dict[str, plotting.Picture]:
    prepared = command.prepare(command.parse([*overrides, *SMALL]))
    return {picture.name: picture for picture in plotting.draw(prepared.model, prepared.task, prepared.heading)}


@pytest.fixture
def low_resolution(monkeypatch):
    monkeypatch.setattr(plotting, "DPI", 30)


@pytest.mark.parametrize("encoding", ENCODINGS.names())
def test_every_encoding_draws_and_writes_pictures(encoding, tmp_path, low_resolution):
    prepared = command.prepare(command.parse([f"encoding={encoding}", *valid_for(encoding), *SMALL, f"--out={tmp_path}"]))
    pictures = plotting.draw(prepared.model, prepared.task, prepared.heading)
    assert pictures, encoding
    assert all("untrained" in picture.figure.get_suptitle() for picture in pictures)
    (path,) = plotting.write(pictures[:1], tmp_path)  # every kind is written by the next test
    assert path.read_bytes().startswith(PNG) and path.stat().st_size > 1000
    subjects = plotting.subjects(prepared.model, prepared.task, "")
    assert any(plotting.kinds_for(subject, leaf, tensorboard=True) for subject, leaf in subjects), encoding


#: Commands whose pictures together are every kind of picture (a combination draws each of its parts).
EVERY_KIND = [
    ["encoding=combo", "encoding.parts=[learned,alibi,shaw]"],
    ["encoding=combo", "encoding.parts=[learned2d,rel_bias2d,rel2d,rope2d_axial]", *valid_for("learned2d")],
    ["encoding=peg", *valid_for("peg")],
    ["encoding=convffn", *valid_for("convffn")],
    ["encoding=randomized"],
    ["encoding=none"],
]


def test_the_command_writes_every_kind_of_picture(tmp_path, monkeypatch, capsys, low_resolution):
    monkeypatch.chdir(tmp_path)
    written = set()
    for overrides in EVERY_KIND:
        assert cli.main(["plot", *overrides, *SMALL]) == 0
        paths = [tmp_path / path for path in capsys.readouterr().out.split()]
        assert paths and all(path.parent.parent == tmp_path / "outputs" / "plots" for path in paths)
        for path in paths:
            assert path.suffix == ".png" and path.read_bytes().startswith(PNG)
            written.add(kind_of(path.stem))
    assert {kind.name for kind in KINDS} <= written


def kind_of(stem: str) -> str:
    """``parts3-rope2d_axial_rotary_logit`` -> ``rotary_logit``: the kind of a picture (of a part)."""
    return next(kind.name for kind in KINDS if stem == kind.name or stem.endswith(f"_{kind.name}"))


def test_sinusoidal_codes_are_a_linear_map_of_the_offset_and_learned_ones_are_not():
    """Vaswani et al. 2017 §3.5: PE(p + k) = M_k PE(p), M_k a rotation of each (sin, cos) pair."""
    sinusoidal = pictures_of("encoding=sinusoidal")["pe_offset"].data
    learned = pictures_of("encoding=learned")["pe_offset"].data
    assert sinusoidal["positions"] > 2 * 32 and learned["positions"] > 2 * 32  # more positions than dimensions
    for fit in sinusoidal["fits"]:
        assert not fit["trivial"] and fit["residual"].max() < 1e-4
        k = fit["k"]  # the fastest pair (frequency 1): [[cos k, sin k], [-sin k, cos k]]
        np.testing.assert_allclose(fit["matrix"][:2, :2], [[np.cos(k), np.sin(k)], [-np.sin(k), np.cos(k)]], atol=1e-4)
    for fit in learned["fits"]:
        assert not fit["trivial"] and fit["residual"].mean() > 0.3


def test_a_fit_over_too_few_positions_says_it_is_trivial():
    overrides = ["task.train_lengths=[1,5]", "task.eval_lengths=[8]", "encoding.max_len=24"]  # 24 positions, 32 dimensions
    learned = pictures_of("encoding=learned", *overrides)["pe_offset"]
    assert any(fit["trivial"] for fit in learned.data["fits"])
    assert "ANY code fits exactly" in learned.figure.get_suptitle()


@pytest.mark.parametrize("model", ["decoder", "encoder"])
def test_alibi_draws_minus_its_slopes_times_the_distance(model):
    data = pictures_of("encoding=alibi", f"model={model}")["bias_vs_distance"].data
    slopes = np.array(alibi_slopes(2))
    distance = data["distance"]
    assert data["layers"] == [0]  # one set of slopes for every layer
    left = -slopes[:, None] * np.clip(distance, 0, None)
    right = -slopes[::-1, None] * np.clip(-distance, 0, None)  # bidirectional: the slopes reversed to the right
    np.testing.assert_allclose(data["values"][0], left + right, rtol=1e-6)
    if model == "decoder":
        assert distance.min() == 0 and distance.max() == data["query"]  # only the keys a causal query sees


def test_rope_options_are_drawn_beside_the_defaults():
    scaled = pictures_of("encoding=rope", "encoding.scale=4")["rotary_logit"].data
    plain = pictures_of("encoding=rope")["rotary_logit"].data
    assert "defaults" not in plain
    np.testing.assert_allclose(scaled["defaults"], plain["ones"][0, 0], rtol=1e-5, atol=1e-5)
    ones = plain["ones"][0, 0]
    assert ones[plain["distance"] == 0][0] == pytest.approx(ones.max())  # the largest logit at distance 0


def test_vit_fig7_similarity_of_a_patch_with_itself_is_one():
    cosine = pictures_of("encoding=sincos2d", *valid_for("sincos2d"))["pe_grid_similarity"].data["cosine"]
    assert cosine.shape == (16, 16)
    np.testing.assert_allclose(np.diag(cosine), 1.0, rtol=1e-6)


# ---- a trained run ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A tiny run of learned on copy, without its twin."""
    folder = tmp_path_factory.mktemp("plot_run")
    cfg = compose([*TINY, "encoding=learned", "compare_nope=false", "trainer.threads=1", "trainer.pictures=true"], folder / "twins")
    experiment.run(cfg, folder / "run")
    return folder / "run"


def test_run_dir_draws_the_weights_of_its_checkpoint(trained_run, tmp_path, capsys, low_resolution):
    code = cli.main(["plot", f"run={trained_run}"])
    paths = capsys.readouterr().out.split()
    assert code == 0 and paths
    assert all(path.startswith(str(trained_run / "plots" / "learned")) for path in paths)
    state = torch.load(trained_run / "checkpoint_learned.pt", weights_only=True)
    prepared = command.prepare(command.parse([f"run={trained_run}", "encoding=learned"]))
    assert "trained" in prepared.heading and "checkpoint at step 12 of 12" in prepared.heading
    pictures = {p.name: p for p in plotting.draw(prepared.model, prepared.task, prepared.heading)}
    drawn = pictures["pe_heatmap"].data["codes"]
    table = state["model"]["net.encoding.table.weight"].double().numpy()
    np.testing.assert_array_equal(drawn, table[: len(drawn)])
    _, untrained = command.build(prepared.cfg)  # the run's initialisation
    initial = untrained.encoding.table.weight.double().detach().numpy()
    assert not np.allclose(initial[: len(drawn)], drawn)  # training moved the table: the checkpoint was read


def test_a_run_adds_pictures_of_its_encoding_to_tensorboard(trained_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(trained_run / "tb" / "learned"), size_guidance={"images": 0})
    events.Reload()
    tags = events.Tags()["images"]
    encoding_tags = [tag for tag in tags if tag.startswith("encoding/")]
    assert "encoding/pe_heatmap" in tags and len(encoding_tags) == plotting.TENSORBOARD_PICTURES
    assert "attention/test_example" in tags
    for tag in ("encoding/pe_heatmap", "attention/test_example"):
        image = events.Images(tag)[0]
        assert image.step == 12 and image.encoded_image_string.startswith(PNG)


def test_attention_figure_draws_every_layer_and_head_of_one_example(tmp_path):
    from posbench.analysis.attention import attention_maps
    from posbench.plotting.attention import attention_figure

    cfg = config.normalise(compose([*TINY, "encoding=alibi"], tmp_path / "twins"))
    task = config.build_task(cfg)
    model = config.build_model(cfg, task)
    test_set = task.test_set(torch.device("cpu"))
    maps = attention_maps(model, test_set[-1])
    layers, heads = cfg["model"]["layers"], cfg["model"]["heads"]
    assert maps.shape[:2] == (layers, heads)
    torch.testing.assert_close(maps.sum(-1), torch.ones(maps.shape[:-1]))
    fig = attention_figure(maps, "tiny", "net")
    assert len(fig.axes) == layers * heads + 1  # the panels and the colour bar
    assert "one test example" in fig._suptitle.get_text()


def test_a_failure_to_draw_is_logged_and_does_not_fail_the_run(tmp_path, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("a bug in a picture")

    monkeypatch.setattr(plotting, "add_to_tensorboard", broken)
    cfg = config.normalise(compose([*TINY, "encoding=alibi"], tmp_path / "twins"))
    task = config.build_task(cfg)
    model = config.build_model(cfg, task)
    with caplog.at_level(logging.WARNING, logger="posbench.experiment"):
        experiment.end_of_run_pictures(model, cfg, task, task.test_set(torch.device("cpu")), tmp_path, 12)
    (record,) = [record for record in caplog.records if record.name == "posbench.experiment"]
    assert "could not draw" in record.getMessage() and record.exc_info[1].args == ("a bug in a picture",)


def test_add_to_tensorboard_adds_images_and_leaves_the_model_alone(tmp_path):
    class Writer:
        def __init__(self):
            self.images = []

        def add_image(self, tag, image, step, dataformats):
            self.images.append((tag, image.shape, step, dataformats))

    cfg = config.normalise(compose([*TINY, *SMALL, "encoding=randomized"], tmp_path / "twins"))
    task = config.build_task(cfg)
    model = config.build_model(cfg, task).train()
    draws = model.encoding.draws
    writer = Writer()
    assert plotting.add_to_tensorboard(writer, model, cfg, task, 7) == 2
    assert [tag for tag, *_ in writer.images] == ["encoding/positions", "encoding/base-rope_rotary_logit"]
    assert all(shape[2] == 3 and step == 7 and form == "HWC" for _, shape, step, form in writer.images)
    assert model.training and model.encoding.draws == draws  # drawn on a copy


# ---- bad input -------------------------------------------------------------------------------
def refused(tmp_path, monkeypatch, capsys, args: list[str]) -> str:
    monkeypatch.chdir(tmp_path)
    before = sorted(tmp_path.rglob("*"))
    code = cli.main(["plot", *args])
    out, err = capsys.readouterr()
    assert code == 2 and not out, (out, err)
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("posbench: error: ") and "Traceback" not in err, err
    assert sorted(tmp_path.rglob("*")) == before, "a refused command wrote something"
    return lines[0]


@pytest.mark.parametrize(
    "args, message",
    [
        (["encoding=foo"], "unknown encoding 'foo'"),
        (["encoding.foo=1"], "encoding=rope has no option foo"),
        (["encoding=rope,alibi"], "posbench plot draws one configuration"),
        (["--bogus"], "unknown flag --bogus"),
        (["encoding=xpos"], "encoding=xpos is defined only for causal attention"),
        (["encoding=learned2d"], "is a 2D encoding"),
        (["run=missing"], "missing: no such folder"),
        (["run=."], "is not a run folder of posbench train (no results.json)"),
        (["--out"], "--out needs a folder"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(args, message, tmp_path, monkeypatch, capsys):
    assert message in refused(tmp_path, monkeypatch, capsys, args)


def test_a_run_folder_without_a_usable_checkpoint_is_refused(tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    run.mkdir()
    cfg = config.normalise(compose([*TINY, "encoding=learned"], "twins"))
    (run / "results.json").write_text(json.dumps({"status": "ok", "config": cfg, "provenance": {}}))
    assert "the run in run has no checkpoint: run/checkpoint_learned.pt is missing" in refused(tmp_path, monkeypatch, capsys, ["run=run"])
    (run / "checkpoint_learned.pt").write_bytes(b"")
    assert "is not a usable checkpoint (empty)" in refused(tmp_path, monkeypatch, capsys, ["run=run"])
    assert "give no other overrides with run=DIR" in refused(tmp_path, monkeypatch, capsys, ["run=run", "model.d_model=8"])

"""The ViT family (``model=vit``): image tokens and coordinates, every 1D encoding on patches in
raster order, tables resampled to another grid (checked against timm), refusals, and resolution
generalization recorded as ``sizes`` in results.json, the printed table, TensorBoard and reports."""

from __future__ import annotations

import json
import math

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import compose
from posbench import experiment
from posbench.encodings import ENCODINGS, AttentionShape
from posbench.encodings.base import NO_POSITION, grid_coordinates, grid_side
from posbench.errors import ConfigError
from posbench.models import MODELS
from posbench.report import summary
from posbench.reporting import write_report
from posbench.reporting.metric import parse

#: The sequence encodings (1D, and 3-axis M-RoPE, which is refused on a ViT).
NAMES_1D = [name for name in ENCODINGS.names() if ENCODINGS.get(name).axes != 2]
#: A quick image run: 8-pixel training images (2x2 patches), scored at 8 and 16 pixels.
MICRO = [
    "model=vit", "task=quadrant", "task.image_size=8", "task.eval_sizes=[8,16]", "task.eval_size=16",
    "trainer.max_steps=4", "trainer.eval_every=2", "trainer.log_every=1", "trainer.checkpoint_every=2",
    "trainer.device=cpu", "model.d_model=16", "model.layers=1", "model.heads=2",
]


def vit(encoding: str = "none", image_size: int = 8, **options) -> torch.nn.Module:
    torch.manual_seed(0)
    return MODELS.build({"name": "vit", **options}, 4, {"name": encoding}, channels=1, image_size=image_size).eval()


def test_grid_coordinates_are_raster_order_after_the_prefix():
    coords = grid_coordinates(3, prefix=1)[0]
    assert coords[0].tolist() == [NO_POSITION, NO_POSITION]
    assert coords[1:].tolist() == [[r, c] for r in range(3) for c in range(3)]
    assert grid_side(10, 1) == 3
    with pytest.raises(ValueError):
        grid_side(11, 1)


@pytest.mark.parametrize("pool", ["cls", "mean"])
def test_vit_classifies_images_of_any_tiled_size(pool):
    model = vit("rope", pool=pool)
    assert model.positions_needed(8, 1) == 4 + (pool == "cls")
    logits = model.target_logits(torch.randn(3, 1, 8, 8), torch.zeros(3, 1, dtype=torch.long))
    assert logits.shape == (3, 1, 4)
    assert model.predict(torch.randn(2, 1, 16, 16), 1).shape == (2, 1)


def test_vit_without_pe_and_a_class_token_ignores_where_patches_are():
    """The class token reads the set of patches: moving patches around leaves its output unchanged."""
    model = vit("none", image_size=16)
    images = torch.randn(2, 1, 16, 16)
    blocks = images.unfold(2, 4, 4).unfold(3, 4, 4).reshape(2, 1, 16, 4, 4)  # 16 patches of 4x4
    shuffled = blocks[:, :, torch.randperm(16)].reshape(2, 1, 4, 4, 4, 4).permute(0, 1, 2, 4, 3, 5).reshape(2, 1, 16, 16)
    assert not torch.equal(shuffled, images)
    torch.testing.assert_close(model.logits(shuffled), model.logits(images), atol=1e-5, rtol=0)


@pytest.mark.parametrize("encoding", NAMES_1D)
def test_every_1d_encoding_runs_on_a_vit_or_is_refused_with_a_reason(encoding):
    """1D encodings read the token index (class token 0, patches in raster order) at the training
    size and at a larger one; the ones that cannot are refused when built, in one line."""
    try:
        model = vit(encoding)
    except ConfigError as refusal:
        assert "\n" not in str(refusal) and f"encoding={encoding}" in str(refusal)
        return
    for size in (8, 16):
        logits = model.logits(torch.randn(2, 1, size, size))
        assert logits.shape == (2, 4) and torch.isfinite(logits).all()


def test_learned_table_resampled_to_another_grid_as_timm_does():
    timm_pos_embed = pytest.importorskip("timm.layers.pos_embed")
    shape = AttentionShape(d_model=8, heads=2, layers=1, causal=False, grid=4, prefix=1)
    enc = ENCODINGS.build({"name": "learned", "max_len": 17}, shape)
    torch.nn.init.normal_(enc.table.weight)
    for side in (6, 3):
        ours = enc.weights(1 + side * side)
        theirs = timm_pos_embed.resample_abs_pos_embed(enc.table.weight[None], [side, side], [4, 4], num_prefix_tokens=1)[0]
        torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=0)
    assert torch.equal(enc.weights(17), enc.table.weight)  # the training grid: the table itself


def test_learned_refuses_another_grid_when_told_to(tmp_path):
    cfg = compose([*MICRO, "encoding=learned", "encoding.resize=refuse"], tmp_path / "twins")
    with pytest.raises(ConfigError, match=r"encoding=learned has a table for the 2x2 training grid .* 4x4 grid"):
        experiment.run(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["task.eval_sizes=[8,10]"], r"task.eval_sizes has 10, not a multiple of model.patch_size=4"),
        (["task.image_size=12", "model.patch_size=8"], r"task.image_size=12 is not a multiple of model.patch_size=8"),
        (["model.pool=max"], r"model.pool"),
        (["model=encoder"], r"model=encoder reads sequences but task=quadrant gives images"),
        (["task=copy"], r"model=vit reads images but task=copy gives sequences"),
    ],
)
def test_bad_image_configurations_are_refused_in_one_line(overrides, message, tmp_path):
    base = [o for o in MICRO if not (o.startswith("task") and any(x.startswith("task=copy") for x in overrides))]
    if "task=copy" in overrides:
        base = [o for o in base if not o.startswith("task.")]
    if "model=encoder" in overrides:
        base = [o for o in base if o != "model=vit"]
    with pytest.raises(ConfigError, match=message) as refusal:
        experiment.run(compose([*base, *overrides], tmp_path / "twins"), tmp_path / "run")
    assert "\n" not in str(refusal.value)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["task=relation", "task.image_size=16", "task.eval_sizes=[16]", "model.patch_size=8"],
         r"task.cell=4 is not a multiple of model.patch_size=8: a patch would straddle cells"),
        (["task=patch_order", "task.image_size=16", "task.eval_sizes=[16]", "model.patch_size=8"],
         r"task.cell=4 is not a multiple of model.patch_size=8"),
        (["task.eval_sizes=[8,12]"], r"half of a 12-pixel image is not a multiple of model.patch_size=4"),
    ],
)
def test_patches_that_could_show_the_label_are_refused(overrides, message, tmp_path):
    """A patch straddling two cells (relation, patch_order) or the quadrant boundary would let the
    no-PE twin read the label from patch contents: refused before training."""
    base = [o for o in MICRO if not (o.startswith("task=") or o.startswith("task.eval_sizes"))]
    task = [o for o in overrides if o.startswith("task=")] or ["task=quadrant"]
    with pytest.raises(ConfigError, match=message):
        experiment.run(compose([*base, *task, *(o for o in overrides if o not in task)], tmp_path / "twins"), tmp_path / "run")


def test_tables_that_remap_positions_are_refused_on_a_grid():
    """randomized draws sequence positions, which a resampled table of the training grid cannot
    serve: refused on a ViT, also inside combo; a learned table with a bias resamples fine."""
    for encoding in ({"name": "randomized", "base": "learned"}, {"name": "combo", "parts": ["learned", "randomized"]}):
        with pytest.raises(ConfigError, match="encoding=randomized draws random positions along a sequence"):
            MODELS.build({"name": "vit"}, 4, encoding, channels=1, image_size=8)
    model = MODELS.build({"name": "vit"}, 4, {"name": "combo", "parts": ["learned", "alibi"]}, channels=1, image_size=8)
    assert torch.isfinite(model.logits(torch.randn(2, 1, 16, 16))).all()


def test_the_class_token_gets_no_weight_decay():
    from posbench.training.loop import parameter_groups

    model = vit("none")
    decayed = {id(p) for p in parameter_groups(model, 0.01)[0]["params"]}
    assert id(model.cls_token) not in decayed and id(model.patch.weight) in decayed


def test_a_vit_run_records_sizes_everywhere(tmp_path):
    """results.json holds ``sizes`` (and ``train_sizes``), the printed table has size columns,
    TensorBoard has accuracy against size, and a report plots it."""
    results = experiment.run(compose([*MICRO, "encoding=learned"], tmp_path / "twins"), tmp_path / "run")
    assert results["status"] == "ok" and results["lengths"] is None
    assert sorted(results["sizes"], key=int) == ["8", "16"] and results["train_sizes"] == [8, 8]
    assert sorted(results["nope"]["sizes"], key=int) == ["8", "16"]
    assert results["chance"] == 0.25 and results["constant_ceiling"] is None
    assert all(0.0 <= values["acc"] <= 1.0 for values in results["sizes"].values())
    on_disk = json.loads((tmp_path / "run" / "results.json").read_text())
    assert on_disk["sizes"] == results["sizes"]

    table = summary(results, tmp_path / "run")
    assert "    8px    16px" in table and "len " not in table

    events = EventAccumulator(str(tmp_path / "run" / "tb" / "learned"))
    events.Reload()
    assert [event.step for event in events.Scalars("size/acc")] == [8, 16]
    assert {"hparam/size_08_acc", "hparam/size_16_acc"} <= set(events.Tags()["scalars"])

    report = write_report(tmp_path)
    assert (tmp_path / "acc_vs_size_quadrant_vit.png").is_file()
    assert "learned" in report
    metric = parse("size16", [results])
    assert metric.of(results) == results["sizes"]["16"]["acc"]
    assert math.isclose(parse("size8", [results]).of(results["nope"]), results["nope"]["sizes"]["8"]["acc"])


#: A small ViT (d_model 32, 2 layers): about 13 s for 1000 steps on one CPU thread.
SMALL = [
    "model=vit", "model.d_model=32", "model.layers=2", "task.eval_sizes=[16]", "task.eval_size=256",
    "trainer.eval_every=1000", "trainer.device=cpu",
]


@pytest.fixture(scope="module")
def twin_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("twins")


@pytest.mark.slow
@pytest.mark.parametrize("task, encoding", [("quadrant", "sincos2d"), ("relation", "rel_bias2d"), ("relation", "rope2d_axial")])
def test_2d_encoding_learns_where_things_are_and_nope_cannot(task, encoding, twin_cache, tmp_path):
    """With a 2D encoding the ViT learns an order task (absolute: where the marker is; relative:
    where one shape is from the other); its no-PE twin sees a bag of patches that is the same in
    distribution for every label and stays at chance (1/4)."""
    results = experiment.run(compose([*SMALL, f"task={task}", f"encoding={encoding}"], twin_cache), tmp_path / "run")
    assert results["metrics"]["acc"] >= 0.95, results["metrics"]
    assert abs(results["nope"]["metrics"]["acc"] - 0.25) < 0.08, results["nope"]["metrics"]
    assert results["pe_off"]["acc"] < 0.4  # the trained model relies on its encoding


@pytest.mark.slow
def test_the_order_free_control_is_learned_without_pe(twin_cache, tmp_path):
    """count depends on the set of patches only: the no-PE ViT learns it (the control of the tests above)."""
    results = experiment.run(compose([*SMALL, "task=count", "encoding=none"], twin_cache), tmp_path / "run")
    assert results["metrics"]["acc"] >= 0.95, results["metrics"]

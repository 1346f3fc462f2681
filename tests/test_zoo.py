"""Every registered encoding, and every registered task, with every model family for a few steps on
CPU: the loss stays finite and results.json is written, or the combination is refused before
training with one line (an attention mode the encoding does not support, a 2D encoding on a
sequence, images given to a sequence model or sequences to the ViT)."""

import json
import math

import pytest

from conftest import compose
from posbench import experiment
from posbench.encodings import ENCODINGS
from posbench.errors import ConfigError
from posbench.models import MODELS
from posbench.tasks import TASKS

MICRO = [
    "task=reverse",
    "trainer.max_steps=3",
    "trainer.log_every=1",
    "trainer.eval_every=3",
    "trainer.device=cpu",
    "model.d_model=16",
    "model.layers=1",
    "model.heads=2",
    "task.eval_size=4",
    "task.train_lengths=[2,4]",
    "task.eval_lengths=[6]",
    "compare_nope=false",
]


#: The attention modes (causal or not) of the self-attention stacks that ``encoding`` enters in
#: each family (a captioner's ``encoding`` is its text decoder's; its image side is tested below).
MODES = {
    "encoder": (False,), "decoder": (True,), "seq2seq": (False, True), "vit": (False,),
    "captioner": (True,), "prefix_captioner": (True,),
}
#: A micro image task for the ViT (8-pixel images: a 2x2 grid of 4-pixel patches, scored at 16 too).
IMAGES = ["task=quadrant", "task.image_size=8", "task.eval_sizes=[8,16]", "task.eval_size=4"]
#: A micro caption task for the captioners (12-pixel images: 3x3 cells and patches, scored at 16 too).
CAPTIONS = ["task=shapes_caption", "task.image_size=12", "task.eval_sizes=[12,16]", "task.eval_size=4"]


#: Sequence (1D, 3-axis) encodings refused on an image grid, with the start of their reason.
REFUSED_ON_A_GRID = {
    "randomized": "draws random positions along a sequence",
    "mrope": "is for a sequence mixing image patches and text",
    "fpe": "places the tokens of streams sampled at different rates on one timeline",
}


def micro(model: str) -> list[str]:
    """MICRO for a sequence model; for the ViT and the captioners, the same trainer and sizes on a
    micro image or caption task."""
    return micro_for(MODELS.get(model).inputs)


def micro_for(inputs: str) -> list[str]:
    if inputs == "sequences":
        return MICRO
    task = IMAGES if inputs == "images" else CAPTIONS
    return [*(o for o in MICRO if not o.startswith("task")), *task]


@pytest.mark.parametrize("model", MODELS.names())
@pytest.mark.parametrize("encoding", ENCODINGS.names())
def test_every_encoding_trains_with_every_model(encoding, model, tmp_path, monkeypatch):
    losses = []
    real_loss = MODELS.get(model).loss

    def recording_loss(self, src, tgt):
        loss, pred = real_loss(self, src, tgt)
        losses.append(loss.item())
        return loss, pred

    monkeypatch.setattr(MODELS.get(model), "loss", recording_loss)
    cls = ENCODINGS.get(encoding)
    overrides = micro(model)
    if cls.reads_time:  # the timeline of a task's streams (fpe): refused on one stream, so trained on sync
        overrides = [("task=sync" if o == "task=reverse" else o) for o in overrides]
    cfg = compose([*overrides, f"encoding={encoding}", f"model={model}"], tmp_path / "twins")
    if cls.axes == 2 and MODELS.get(model).inputs != "images":  # a sequence, or a caption's text
        with pytest.raises(ConfigError, match=f"encoding={encoding} is a 2D encoding"):
            experiment.run(cfg, tmp_path / "run")
        return
    if cls.reads_time and MODELS.get(model).inputs == "captioned images":  # no task with streams
        with pytest.raises(ConfigError, match=f"encoding={encoding} {REFUSED_ON_A_GRID[encoding]}"):
            experiment.run(cfg, tmp_path / "run")
        return
    if MODELS.get(model).inputs == "images" and encoding in REFUSED_ON_A_GRID:
        with pytest.raises(ConfigError, match=f"encoding={encoding} {REFUSED_ON_A_GRID[encoding]}"):
            experiment.run(cfg, tmp_path / "run")
        return
    if not all(cls.supports_causal if causal else cls.supports_bidirectional for causal in MODES[model]):
        with pytest.raises(ConfigError, match=f"encoding={encoding} is defined only for"):
            experiment.run(cfg, tmp_path / "run")
        return
    experiment.run(cfg, tmp_path / "run")
    assert len(losses) == 3 and all(math.isfinite(v) for v in losses)
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["encoding"] == encoding and saved["model"] == model


@pytest.mark.parametrize("encoding", ENCODINGS.names())
def test_every_encoding_on_the_image_side_of_the_captioner(encoding, tmp_path):
    """``model.image_encoding``: every 1D and 2D encoding trains in the captioner's bidirectional
    image encoder; the causal-only ones and those refused on a grid are refused in one line."""
    cls = ENCODINGS.get(encoding)
    overrides = [*micro("captioner"), "model=captioner", "encoding=rope", f"model.image_encoding={encoding}"]
    cfg = compose(overrides, tmp_path / "twins")
    if encoding in REFUSED_ON_A_GRID:
        with pytest.raises(ConfigError, match=f"image encoder .*encoding={encoding} {REFUSED_ON_A_GRID[encoding]}"):
            experiment.run(cfg, tmp_path / "run")
        return
    if not cls.supports_bidirectional:
        with pytest.raises(ConfigError, match=f"image encoder .*encoding={encoding} is defined only for causal"):
            experiment.run(cfg, tmp_path / "run")
        return
    results = experiment.run(cfg, tmp_path / "run")
    assert results["status"] == "ok" and results["config"]["model"]["image_encoding"] == encoding


def test_every_family_is_listed_in_modes():
    assert sorted(MODES) == MODELS.names()


#: Dataset-backed tasks need files: tests/test_text_tasks.py runs them end to end on tiny ones.
SYNTHETIC = [name for name, cls in TASKS.items() if not cls.dataset_backed]


@pytest.mark.parametrize("model", MODELS.names())
@pytest.mark.parametrize("task", SYNTHETIC)
def test_every_task_trains_with_every_model(task, model, tmp_path):
    overrides = [o for o in micro_for(TASKS.get(task).inputs) if not o.startswith(("task=", "task.train_lengths"))]
    cfg = compose([*overrides, f"task={task}", f"model={model}", "encoding=rope"], tmp_path / "twins")
    if TASKS.get(task).inputs != MODELS.get(model).inputs:
        reads = MODELS.get(model).inputs
        with pytest.raises(ConfigError, match=f"model={model} reads {reads} but task={task} gives"):
            experiment.run(cfg, tmp_path / "run")
        return
    results = experiment.run(cfg, tmp_path / "run")
    assert results["task"] == task and 0.0 <= results["metrics"]["acc"] <= 1.0
    assert 0.0 < results["chance"] <= 1.0

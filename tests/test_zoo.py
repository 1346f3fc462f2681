"""Every registered encoding, and every registered task, with every model family for a few steps on
CPU: the loss stays finite and results.json is written, or the encoding refuses the mode before
training."""

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


#: The attention modes (causal or not) of each family's self-attention stacks.
MODES = {"encoder": (False,), "decoder": (True,), "seq2seq": (False, True)}


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
    cfg = compose([*MICRO, f"encoding={encoding}", f"model={model}"], tmp_path / "twins")
    cls = ENCODINGS.get(encoding)
    if not all(cls.supports_causal if causal else cls.supports_bidirectional for causal in MODES[model]):
        with pytest.raises(ConfigError, match=f"encoding={encoding} is defined only for"):
            experiment.run(cfg, tmp_path / "run")
        return
    experiment.run(cfg, tmp_path / "run")
    assert len(losses) == 3 and all(math.isfinite(v) for v in losses)
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["encoding"] == encoding and saved["model"] == model


def test_every_family_is_listed_in_modes():
    assert sorted(MODES) == MODELS.names()


#: Dataset-backed tasks need files: tests/test_text_tasks.py runs them end to end on tiny ones.
SYNTHETIC = [name for name, cls in TASKS.items() if not cls.dataset_backed]


@pytest.mark.parametrize("model", MODELS.names())
@pytest.mark.parametrize("task", SYNTHETIC)
def test_every_task_trains_with_every_model(task, model, tmp_path):
    overrides = [o for o in MICRO if not o.startswith(("task=", "task.train_lengths"))]
    cfg = compose([*overrides, f"task={task}", f"model={model}", "encoding=rope"], tmp_path / "twins")
    results = experiment.run(cfg, tmp_path / "run")
    assert results["task"] == task and 0.0 <= results["metrics"]["acc"] <= 1.0
    assert 0.0 < results["chance"] <= 1.0

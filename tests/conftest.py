"""Shared fixtures: composed configurations and tiny-run overrides. Caches stay in tmp."""

from __future__ import annotations

import os
import tempfile

import pytest

# No test may write caches into the user's home or reach the network.
_CACHE = tempfile.mkdtemp(prefix="posbench-test-cache-")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HOME", os.path.join(_CACHE, "hf"))
os.environ.setdefault("MPLCONFIGDIR", os.path.join(_CACHE, "mpl"))
os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", os.path.join(_CACHE, "inductor"))

#: Overrides that make a run take a second or two on CPU.
TINY = [
    "trainer.max_steps=12",
    "trainer.eval_every=6",
    "trainer.log_every=3",
    "trainer.checkpoint_every=6",
    "trainer.device=cpu",
    "trainer.pictures=false",  # the pictures' own tests turn them on
    "model.d_model=32",
    "model.layers=2",
    "task.eval_size=32",
    "task.train_lengths=[1,5]",
    "task.eval_lengths=[3,5,8]",
]


def compose(overrides: list[str], twin_cache) -> dict:
    """The resolved ``posbench train`` configuration for ``overrides``, as a plain dict."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from omegaconf import OmegaConf

    from posbench.cli import CONFIG_DIR

    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = hydra_compose("train", overrides=[*overrides, f"twin_cache={twin_cache}"])
    return OmegaConf.to_container(cfg, resolve=True)


@pytest.fixture
def tiny_cfg(tmp_path):
    """``tiny_cfg(*overrides)``: a tiny run's configuration with its twin cache under tmp_path."""
    return lambda *overrides: compose([*TINY, *overrides], tmp_path / "twins")


def skip_unsupported(encoding: str, causal: bool) -> None:
    """Skip a registry-wide check for an attention mode the encoding declares it does not support
    (that refusal itself is checked by tests/test_zoo.py)."""
    from posbench.encodings import ENCODINGS

    cls = ENCODINGS.get(encoding)
    if not (cls.supports_causal if causal else cls.supports_bidirectional):
        pytest.skip(f"{encoding} does not support {'causal' if causal else 'bidirectional'} attention")


def sequence_encodings() -> list[str]:
    """The encodings a sequence model can hold: the 1D ones and the 3-axis ones (M-RoPE, which read
    the index on every axis when a model passes no coordinates); 2D encodings need an image grid:
    their refusal on sequences is checked by tests/test_zoo.py, their work on the ViT by their own tests.
    Left out: the encodings that read the timeline of a task's streams (``reads_time``: fpe), which
    need a model built for such a task (tests/test_fpe_sync.py checks them on task=sync)."""
    from posbench.encodings import ENCODINGS

    return [name for name, cls in ENCODINGS.items() if cls.axes != 2 and not cls.reads_time]


def same_weights(a, b) -> bool:
    """The checkpoints ``a`` and ``b`` hold bit-identical model weights."""
    import torch

    from posbench.training.loop import load_checkpoint

    first, second = load_checkpoint(a)["model"], load_checkpoint(b)["model"]
    return first.keys() == second.keys() and all(torch.equal(first[key], second[key]) for key in first)


@pytest.fixture
def refusal(tmp_path, monkeypatch, capsys):
    """``refusal(args)``: run ``posbench train ARGS`` in-process in an empty folder, where nothing may
    train, and return its error: exit code 2, one ``posbench: error:`` line (a sweep: a header and one
    line per invalid job), no traceback, nothing written. Returns the last line."""
    from posbench import cli, experiment
    from posbench.training import loop

    monkeypatch.chdir(tmp_path)

    def no_training(*args, **kwargs):
        raise AssertionError("a refused command must not start a run")

    monkeypatch.setattr(experiment, "run", no_training)
    monkeypatch.setattr(loop, "fit", no_training)

    def refused(args: list[str]) -> str:
        code = cli.main(["train", *args])
        out, err = capsys.readouterr()
        lines = err.splitlines()
        assert code == 2, (out, err)
        assert lines and lines[0].startswith("posbench: error: ") and "Traceback" not in out + err, err
        assert len(lines) == 1 or (args[0] == "-m" and "jobs" in lines[0] and "invalid" in lines[0]), err
        assert not list(tmp_path.iterdir()), "a refused command wrote something"
        return lines[-1]

    return refused


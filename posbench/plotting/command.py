"""``posbench plot [encoding=NAME] [OVERRIDES] [run=DIR] [--out DIR]``: PNG pictures of one
positional encoding, untrained (the model the configuration builds, initialised as ``posbench
train`` initialises it with its seed) or as learned in a run (``run=DIR``: the run folder's
checkpoint, with the configuration its results.json records).

The configuration is composed and checked as ``posbench train`` does (``posbench.sweep``'s
composition, ``posbench.config``'s schema and refusals), so that any mistake is one line and exit
code 2 before anything is written; the pictures are drawn in memory, then written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from posbench import config
from posbench.errors import ConfigError, first_line

USAGE = """usage: posbench plot [encoding=NAME] [OVERRIDES] [run=DIR] [--out DIR]

Draw one positional encoding as PNG files: untrained (built from the configuration, with its seed),
or with run=DIR as learned in that run (its checkpoint and the configuration of its results.json).

  OVERRIDES   Hydra overrides as for posbench train: encoding.*, model=..., model.*, task=..., seed=...
  run=DIR     a run folder written by posbench train (no other overrides then)
  --out DIR   where to write (default: DIR/plots/<encoding> with run=DIR, else outputs/plots/<run name>)

examples:
  posbench plot encoding=sinusoidal
  posbench plot encoding=alibi model=decoder
  posbench plot encoding=rope encoding.scale=4
  posbench plot encoding=learned2d model=vit task=digits
  posbench plot run=outputs/runs/2026-11-30/07-58-37-729681_rope_copy_encoder_s0
"""


@dataclass
class Request:
    overrides: list[str]
    run: Path | None
    out: Path | None
    help: bool = False


@dataclass
class Prepared:
    """A built model to draw, with its configuration, task, title heading and output folder."""

    model: object
    cfg: dict
    task: object
    heading: str
    out: Path


def parse(argv: list[str]) -> Request:
    """The command line: overrides, ``run=DIR``, ``--out DIR``; a malformed one is a ``ConfigError``."""
    overrides, run, out, wants_help = [], None, None, False
    items = iter(argv)
    for arg in items:
        if arg in ("-h", "--help"):
            wants_help = True
        elif arg == "--out" or arg.startswith("--out="):
            value = arg[len("--out="):] if arg.startswith("--out=") else next(items, None)
            if not value:
                raise ConfigError("--out needs a folder, e.g. --out plots (see posbench plot --help)")
            if out is not None:
                raise ConfigError("--out is given twice")
            out = Path(value)
        elif arg.startswith("run="):
            if not arg[4:]:
                raise ConfigError("run= needs a run folder, e.g. run=outputs/runs/<date>/<time>_<name>")
            if run is not None:
                raise ConfigError("run= is given twice; posbench plot draws one run")
            run = Path(arg[4:])
        elif arg.startswith("-"):
            raise ConfigError(f"unknown flag {arg} (see posbench plot --help)")
        else:
            overrides.append(arg)
    return Request(overrides, run, out, wants_help)


def compose(overrides: list[str]) -> dict:
    """The normalised configuration of ``overrides``, composed as ``posbench train`` composes one run."""
    from hydra import initialize_config_dir

    from posbench import sweep

    with initialize_config_dir(config_dir=str(sweep.CONFIG_DIR), version_base="1.3", job_name="posbench"):
        swept = [o.input_line for o in sweep.parse(overrides) if o.is_sweep_override()]
        if swept:
            raise ConfigError(f"{swept[0]} sweeps over several values; posbench plot draws one configuration")
        return config.normalise(sweep.own_config(sweep.compose_job(overrides)))


def build(cfg: dict):
    """Task and model of ``cfg`` on the CPU, initialised as ``posbench train`` initialises them
    (``torch.manual_seed(seed)`` right before the model is built); sizes that cannot be built, or
    whose weights exceed the memory, are refused."""
    from posbench.hardware import memory_bytes

    task = config.build_task(cfg)
    try:
        shapes = config.build_model(cfg, task, meta=True)
    except (RuntimeError, OverflowError) as err:
        raise ConfigError(f"the model cannot be built with these sizes: {first_line(err)}") from None
    weights = 4 * sum(p.numel() for p in shapes.parameters())
    available = memory_bytes(torch.device("cpu"))
    if available is not None and weights > available:
        raise ConfigError(f"the model's weights need {weights / 2**30:.3g} GiB but this machine has {available / 2**30:.3g} GiB")
    torch.manual_seed(cfg["seed"])
    return task, config.build_model(cfg, task).eval()


def recorded_run(folder: Path, overrides: list[str]) -> tuple[dict, Path]:
    """The recorded configuration of the run in ``folder`` and its checkpoint
    (``posbench.training.trained``); the only override allowed beside ``run=DIR`` is its own encoding."""
    from posbench.training.trained import checkpoint_of, read_run

    saved = read_run(folder)
    cfg = saved["config"]
    for override in overrides:
        if override != f"encoding={cfg['encoding']['name']}":
            raise ConfigError(
                f"{override}: run=DIR draws the configuration its results.json records "
                f"(encoding={cfg['encoding']['name']}); give no other overrides with run=DIR"
            )
    return saved, checkpoint_of(folder, saved)


def prepare(request: Request) -> Prepared:
    """Everything checked and built before a file is written."""
    from posbench.labels import describe, folder_name
    from posbench.validation import check_folder

    if request.run is None:
        cfg = compose(request.overrides)
        task, model = build(cfg)
        heading = f"{describe(cfg)} — untrained (initialisation, seed {cfg['seed']})"
        out = request.out or Path("outputs") / "plots" / folder_name(cfg)
    else:
        from posbench.training.trained import load_weights

        saved, checkpoint = recorded_run(request.run, request.overrides)
        cfg = saved["config"]
        task, model = build(cfg)
        state = load_weights(model, checkpoint, saved["provenance"].get("fingerprint"), f"the run in {request.run}")
        heading = (
            f"{describe(cfg)} — trained (run {request.run.absolute().name}, checkpoint at step {state['step']} "
            f"of {cfg['trainer']['max_steps']})"
        )
        out = request.out or request.run / "plots" / config.run_label(cfg)
    check_folder("--out", out)
    return Prepared(model, cfg, task, heading, out)


def main(argv: list[str]) -> int:
    """Draw, write and print the paths written; bad input raises ``ConfigError`` (nothing written)."""
    from posbench.plotting import draw, write

    request = parse(argv)
    if request.help:
        print(USAGE)
        return 0
    prepared = prepare(request)
    pictures = draw(prepared.model, prepared.task, prepared.heading)
    try:
        paths = write(pictures, prepared.out)
    except OSError as err:
        raise ConfigError(f"cannot write the pictures into {prepared.out}: {err.strerror or err}") from None
    for path in paths:
        print(path)
    return 0

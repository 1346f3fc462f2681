"""``posbench analyze DIR``: look inside a trained run.

For the run in ``DIR`` (a folder written by ``posbench train``) and, by default, its no-PE twin:

* ``probe`` (``posbench.analysis.probe``): linear probes of each token's absolute position from
  every layer's hidden states (R² of a ridge regression, accuracy of a linear softmax
  classifier), per Transformer stack: does the model know where a token is, and from which layer
  on? A causal NoPE decoder does (Haviv et al. 2022; Kazemnejad et al. 2023, §5), a bidirectional
  NoPE encoder cannot (R² ≈ 0: it is permutation-equivariant);
* ``attention`` (``posbench.analysis.attention``): mean attention distance per layer and head,
  at the longest training length and at the evaluation lengths beyond it.

The twin is analysed by default because the comparison is the point of every posbench number:
the probe of a RoPE model says little until it is set beside the same model trained without PE
(``--no-twin`` analyses the run alone; a run of ``encoding=none`` *is* a twin and is analysed once).
Its checkpoint is read from the twin cache (``provenance.twin``), never written to.

The results go into the run's ``results.json`` under ``analysis`` (the file rewritten atomically,
a previous analysis replaced) and into TensorBoard under ``<DIR>/tb/analysis/<label>`` (``rope``,
``none``: one TensorBoard run per model, so the two overlay on every chart; a new analysis
replaces the events of the previous one): scalars ``analysis/probe_r2/<stack>``,
``analysis/probe_acc/<stack>`` and ``analysis/attention_distance/<stack>/len<L>`` written with the
layer as their step (0: the embedding output), and the figures ``analysis/position_probe`` and
``analysis/attention_distance``.

Bad input (not a run folder, a run that did not end ``ok``, a missing or foreign checkpoint, an
unknown flag, a length the model cannot represent...) is a ``ConfigError``: one line, exit code 2,
nothing written.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch

import posbench
from posbench import config
from posbench.analysis.attention import attention_maps, distances
from posbench.analysis.probe import PENALTY, RIDGE, probe_positions
from posbench.errors import ConfigError
from posbench.training.files import write_json
from posbench.training.trained import checkpoint_of, load_weights, read_run

__all__ = ["analyse", "attention_maps", "main"]

#: The largest ``--seed``: the sequences' generator seeds, ``seed * 1_000_003 + 2 + length``, stay below 2**63.
SEED_MAX = 2**32 - 1
#: Sequences per length (and per half of the probe's data) by default.
EXAMPLES = 256


@dataclass
class Subject:
    """One model to analyse: the run's, or its twin's."""

    #: ``run`` or ``twin`` (the key in results.json's ``analysis``).
    role: str
    #: Its label (``rope``, ``none``) and TensorBoard folder name.
    label: str
    model: torch.nn.Module


@dataclass
class Plan:
    """What ``posbench analyze`` was asked, checked: nothing is written before this exists."""

    folder: Path
    saved: dict
    task: object
    subjects: list[Subject]
    probe_length: int
    lengths: list[int]
    examples: int
    seed: int
    device: torch.device
    #: Why the twin is not analysed (None: it is, or the run is its own twin).
    no_twin: str | None


# ---- reading and checking ----------------------------------------------------------------------
def rebuild(saved: dict, path: Path):
    """The task and an untrained model of the run's configuration (normalised by ``read_run``)."""
    cfg = saved["config"]
    try:
        task = config.build_task(cfg)
        model = config.build_model(cfg, task)
    except ConfigError as err:
        raise ConfigError(f"{path}: its configuration is not valid in this posbench version: {err}") from None
    if task.inputs != "sequences":
        raise ConfigError(
            f"posbench analyze reads sequence tasks; task={cfg['task']['name']} gives {task.inputs}"
        )
    return task, model


def check_lengths(task, models: list, lengths: list[int], what: str) -> None:
    """Every length is one the task and each model can take."""
    for length in lengths:
        if length < task.min_length:
            raise ConfigError(f"{what} {length} is shorter than task={task.name} allows (at least {task.min_length})")
        for model in models:
            try:
                model.check_fits(task.source_len(length), task.target_len(length))
            except ConfigError as err:
                raise ConfigError(f"{what} {length}: {err}") from None


def check_writable(folder: Path) -> None:
    """results.json can be replaced and ``tb/analysis`` created."""
    results = folder / "results.json"
    if not os.access(folder, os.W_OK | os.X_OK) or not os.access(results, os.W_OK):
        raise ConfigError(f"{folder} is not writable: the analysis could not be added to its results.json")
    existing = folder / "tb" / "analysis"
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"{existing} is not a writable folder: the analysis' TensorBoard events cannot go under it")


def plan(args: argparse.Namespace) -> Plan:
    """Check everything ``args`` asks for and load the models; ``ConfigError`` for any problem."""
    from posbench.hardware import resolve_device

    folder = Path(args.folder)
    saved = read_run(folder)
    path = folder / "results.json"
    cfg, provenance = saved["config"], saved["provenance"]
    try:
        device = resolve_device(args.device)
    except ConfigError as err:
        raise ConfigError(f"--device {args.device}: {str(err).split(' but ', 1)[-1]}") from None
    task, model = rebuild(saved, path)
    label = config.run_label(cfg)
    pe_free = config.is_pe_free(cfg)
    twin_folder = Path(provenance["twin"]) if provenance.get("twin") else None
    load_weights(model, checkpoint_of(folder, saved), provenance.get("fingerprint"), f"the run in {folder}")
    subjects = [Subject("run", label, model)]

    no_twin = None
    if pe_free:
        no_twin = "the run has no encoding: it is its own twin"
    elif args.no_twin:
        no_twin = "--no-twin"
    elif twin_folder is None:
        no_twin = "the run has no twin (compare_nope=false)"
    elif (saved.get("nope") or {}).get("status") != "ok":
        no_twin = f"the twin did not end ok ({(saved.get('nope') or {}).get('status')})"
    else:
        twin_cfg = config.no_pe_config(cfg)
        twin = config.build_model(twin_cfg, task)
        meaning = config.semantic(twin_cfg, torch.device(saved["device"]), provenance.get("threads"), task)
        load_weights(
            twin, twin_folder / f"checkpoint_{config.run_label(twin_cfg)}.pt", config.fingerprint(meaning),
            f"the no-PE twin of the run in {folder}", remedy="; --no-twin analyses the run alone",
        )
        subjects.append(Subject("twin", config.run_label(twin_cfg), twin))

    train_max = task.train_lengths[1]
    probe_length = train_max if args.probe_length is None else args.probe_length
    lengths = args.lengths or [train_max, *(n for n in task.eval_lengths if n > train_max)]
    lengths = sorted(set(lengths))
    models = [subject.model for subject in subjects]
    check_lengths(task, models, [probe_length], "--probe-length")
    check_lengths(task, models, lengths, "--lengths")
    check_writable(folder)
    for subject in subjects:
        subject.model.to(device).eval()
    return Plan(folder, saved, task, subjects, probe_length, lengths, args.examples, args.seed, device, no_twin)


# ---- the analysis ------------------------------------------------------------------------------
def sample(task, count: int, length: int, seed: int, device: torch.device):
    """``count`` examples of task length ``length`` from the task's generator, seeded."""
    generator = torch.Generator().manual_seed(seed)
    src, tgt = task.sample(count, length, generator)
    return src.to(device), tgt.to(device)


def analyse(plan: Plan) -> dict:
    """The ``analysis`` entry of results.json (the same data for every model: the twin and the run
    read the same sequences)."""
    started = time.time()
    task, device, seed = plan.task, plan.device, plan.seed
    probe_train = sample(task, plan.examples, plan.probe_length, seed * 1_000_003, device)
    probe_test = sample(task, plan.examples, plan.probe_length, seed * 1_000_003 + 1, device)
    by_length = {n: sample(task, plan.examples, n, seed * 1_000_003 + 2 + n, device) for n in plan.lengths}
    entry = {
        "settings": {
            "probe_length": plan.probe_length, "lengths": plan.lengths,
            "train_lengths": list(task.train_lengths), "examples": plan.examples, "seed": seed, "ridge": RIDGE, "softmax_penalty": PENALTY,
        },
        "run": None, "twin": None, "twin_not_analysed": plan.no_twin,
    }
    for subject in plan.subjects:
        attention: dict[str, dict] = {}
        for n, batch in by_length.items():
            for stack, values in distances(subject.model, batch).items():
                attention.setdefault(stack, {})[str(n)] = values
        entry[subject.role] = {
            "label": subject.label,
            "probe": probe_positions(subject.model, probe_train, probe_test),
            "attention_distance": attention,
        }
    entry["provenance"] = {
        "posbench": posbench.__version__, "torch": torch.__version__, "device": device.type,
        "threads": torch.get_num_threads(),
        "analysed": datetime.datetime.fromtimestamp(started, datetime.timezone.utc).isoformat(timespec="seconds"),
        "wall_time_s": round(time.time() - started, 3),
    }
    return entry


# ---- writing -----------------------------------------------------------------------------------
def events_folder(folder: Path, label: str) -> Path:
    return folder / "tb" / "analysis" / label


def write_events(folder: Path, analysis: dict) -> None:
    """One TensorBoard run per analysed model (``tb/analysis/<label>``), replacing an earlier analysis'."""
    from torch.utils.tensorboard import SummaryWriter

    for role in ("run", "twin"):
        result = analysis[role]
        if result is None:
            continue
        target = events_folder(folder, result["label"])
        for old in target.glob("events.out.tfevents.*") if target.is_dir() else ():
            old.unlink()
        with SummaryWriter(str(target)) as writer:
            for stack, values in result["probe"].items():
                for layer, (r2, acc) in enumerate(zip(values["r2"], values["acc"])):
                    writer.add_scalar(f"analysis/probe_r2/{stack}", r2, layer)
                    writer.add_scalar(f"analysis/probe_acc/{stack}", acc, layer)
            for stack, per_length in result["attention_distance"].items():
                for n, values in per_length.items():
                    for layer, distance in enumerate(values["layers"], start=1):
                        writer.add_scalar(f"analysis/attention_distance/{stack}/len{n}", distance, layer)
            writer.add_figure("analysis/position_probe", probe_figure(result, analysis["settings"]), 0)
            writer.add_figure("analysis/attention_distance", distance_figure(result, analysis["settings"]), 0)


def probe_figure(result: dict, settings: dict):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    stacks = result["probe"]
    figure = Figure(figsize=(4.5 * len(stacks), 3.4))
    for index, (stack, values) in enumerate(stacks.items()):
        axes = figure.add_subplot(1, len(stacks), index + 1)
        layers = range(len(values["r2"]))
        axes.plot(layers, values["r2"], marker="o", label="R² (ridge)")
        axes.plot(layers, values["acc"], marker="s", label="accuracy (softmax)")
        axes.axhline(values["chance"], color="grey", linestyle=":", label="chance accuracy")
        axes.set_ylim(min(-0.05, *values["r2"]), 1.05)
        axes.set_xticks(list(layers))
        axes.set_xlabel("layer (0: embedding output)")
        axes.set_title(f"{result['label']}: position of {values['tokens']} tokens ({stack})", fontsize=9)
        axes.legend(fontsize=7)
    figure.tight_layout()
    return figure


def distance_figure(result: dict, settings: dict):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    stacks = result["attention_distance"]
    figure = Figure(figsize=(4.5 * len(stacks), 3.4))
    train_max = settings["train_lengths"][1]
    for index, (stack, per_length) in enumerate(stacks.items()):
        axes = figure.add_subplot(1, len(stacks), index + 1)
        for n, values in per_length.items():
            layers = range(1, len(values["layers"]) + 1)
            line = axes.plot(layers, values["layers"], marker="o", label=f"len {n}" + (" (beyond)" if int(n) > train_max else ""))[0]
            for layer, heads in zip(layers, values["heads"]):
                axes.scatter([layer] * len(heads), heads, color=line.get_color(), s=8, alpha=0.4)
            axes.axhline(values["uniform"], color=line.get_color(), linestyle=":", linewidth=1)
        axes.set_xticks(list(range(1, len(next(iter(per_length.values()))["layers"]) + 1)))
        axes.set_xlabel("layer")
        axes.set_ylabel("mean attention distance (tokens)")
        axes.set_title(f"{result['label']} ({stack}): heads as dots, uniform dotted", fontsize=9)
        axes.legend(fontsize=7)
    figure.tight_layout()
    return figure


def write(plan: Plan, analysis: dict) -> None:
    """The events, then results.json with ``analysis`` (re-read, so that nothing else in it changes)."""
    path = plan.folder / "results.json"
    write_events(plan.folder, analysis)
    saved = json.loads(path.read_text())
    saved["analysis"] = analysis
    write_json(path, saved)


# ---- the command -------------------------------------------------------------------------------
def summary(plan: Plan, analysis: dict) -> str:
    """The numbers, as a few small tables."""
    saved = plan.saved
    lines = [f"\n{saved.get('label')} · {saved['task']} · {saved['model']} · seed {saved['seed']}: analysis"]
    results = [analysis[role] for role in ("run", "twin") if analysis[role] is not None]
    names = {id(result): result["label"] + (" (no-PE twin)" if result is analysis["twin"] else "") for result in results}
    width = max(len(name) for name in names.values()) + 2
    for stack in results[0]["probe"]:
        first = results[0]["probe"][stack]
        layers = len(first["r2"])
        lines.append(
            f"position probe, {stack}: {first['tokens']} tokens at length {plan.probe_length} "
            f"(R² / accuracy, held out; chance accuracy {first['chance']:.3f})"
        )
        lines.append(f"  {'':<{width}}{'layer':<5}" + "".join(f"{layer:>7}" for layer in range(layers)))
        for result in results:
            values = result["probe"][stack]
            lines.append(f"  {names[id(result)]:<{width}}{'R²':<5}" + "".join(f"{v:>7.3f}" for v in values["r2"]))
            lines.append(f"  {'':<{width}}{'acc':<5}" + "".join(f"{v:>7.3f}" for v in values["acc"]))
    train_max = plan.task.train_lengths[1]
    for stack in results[0]["attention_distance"]:
        lines.append(f"mean attention distance, {stack} (tokens, mean over heads; [uniform attention])")
        for result in results:
            for n, values in result["attention_distance"][stack].items():
                where = "beyond" if int(n) > train_max else "in dist."
                head = f"  {names[id(result)]:<{width}}len {n:>3} {where:<8}"
                lines.append(head + "".join(f"{v:>7.2f}" for v in values["layers"]) + f"  [{values['uniform']:.2f}]")
    if plan.no_twin and plan.no_twin != "--no-twin":
        lines.append(f"no twin analysed: {plan.no_twin}")
    lines += [
        "",
        f"results:     {plan.folder / 'results.json'} (analysis)",
        f"tensorboard: tensorboard --logdir {plan.folder / 'tb'}",
    ]
    return "\n".join(lines)


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be at least 1")
    return value


def seed(text: str) -> int:
    """A seed small enough that the sequences' generator seeds (``seed * 1_000_003 + ...``) fit in 63 bits."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= value <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"{text} must be between 0 and {SEED_MAX}")
    return value


def length_list(text: str) -> list[int]:
    return [positive(part) for part in text.split(",") if part.strip()] or [positive(text)]


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="posbench analyze",
        description="Position probes and attention distances of a trained run (and its no-PE twin), "
        "added to its results.json (analysis) and TensorBoard (tb/analysis/).",
    )
    parser.add_argument("folder", type=Path, metavar="DIR", help="a run folder written by posbench train")
    parser.add_argument(
        "--lengths", type=length_list, nargs="+", metavar="L",
        help="lengths for attention distances, e.g. 10,20,40 (default: the longest training length and every evaluation length beyond it)",
    )
    parser.add_argument("--probe-length", type=positive, metavar="L", help="source length of the probe's sequences (default: the longest training length)")
    parser.add_argument("--examples", type=positive, default=EXAMPLES, metavar="N", help=f"sequences per length, and per half of the probe's data (default {EXAMPLES})")
    parser.add_argument("--seed", type=seed, default=0, help="seed of the analysed sequences (default 0)")
    parser.add_argument("--no-twin", action="store_true", help="analyse the run alone, not its no-PE twin")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")

    def refuse(message: str):
        raise ConfigError(f"{message} (see posbench analyze --help)")

    parser.error = refuse
    return parser


def main(argv: list[str]) -> int:
    """``posbench analyze DIR [--lengths L ...] [--probe-length L] [--examples N] [--seed S]
    [--no-twin] [--device D]`` (``argv``: the arguments after ``analyze``). Everything is checked
    before anything is computed or written (``ConfigError``)."""
    args = parser().parse_args(argv)
    if args.lengths is not None:
        args.lengths = [n for group in args.lengths for n in group]
    if args.device not in ("auto", "cpu", "cuda") and not (args.device.startswith("cuda:") and args.device[5:].isdigit()):
        raise ConfigError(f"--device {args.device}: must be auto, cpu, cuda or cuda:N")
    checked = plan(args)
    analysis = analyse(checked)
    write(checked, analysis)
    print(summary(checked, analysis))
    return 0

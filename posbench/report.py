"""Text output: the side-by-side table printed after a run, and the ``posbench list`` catalogue."""

from __future__ import annotations

from pathlib import Path

from posbench import scales
from posbench.labels import describe


def _row(
    label: str, metrics: dict, lengths: dict | None, columns: list[str], extras: list[str], by: str, width: int, cell: int
) -> str:
    cells = [f"{metrics['acc']:>7.3f}", f"{metrics['seq_acc']:>8.3f}"]
    cells += [f"{metrics[key]:>{_width(key)}.{_digits(key)}f}" if key in metrics else f"{'':>{_width(key)}}" for key in extras]
    per_length = [f"{lengths[c][by]:>{cell}.3f}" if lengths else f"{'':>{cell}}" for c in columns]
    return f"{label:<{width}}" + " ".join(cells) + "  |" + " ".join(per_length)


def _width(key: str) -> int:
    return max(7, len(key))


def _digits(key: str) -> int:
    """BLEU (0-100) and perplexity with 2 decimals; accuracies (a task's own, spatial_acc) with 3."""
    return 2 if key in ("bleu", "ppl") else 3


def one_line(results: dict) -> str:
    """``rope(scale=4) · copy · encoder · seed 0: acc 0.912 (PE off 0.204, no-PE twin 0.306)``."""
    head = describe(results["config"])
    if results["status"] != "ok":
        return f"{head}: {results['status']}"
    others = [f"PE off {results['pe_off']['acc']:.3f}"] if results["pe_off"] is not None else []
    twin = results["nope"]
    if twin is not None:
        others.append(f"no-PE twin {twin['metrics']['acc']:.3f}" if twin["status"] == "ok" else f"no-PE twin {twin['status']}")
    return f"{head}: acc {results['metrics']['acc']:.3f}" + (f" ({', '.join(others)})" if others else "")


def summary(results: dict, run_dir: Path) -> str:
    """Accuracy with PE, with PE switched off, and of the no-PE twin, side by side."""
    axis = scales.axis_of(results)
    columns = sorted(scales.scores(results), key=int)
    headings = [f"{c}px" if axis == "size" else f"len {c}" for c in columns]
    cell = max([7, *(len(heading) for heading in headings)])
    extras = [key for key in results["metrics"] if key not in ("acc", "seq_acc")]  # bleu, ppl
    by = "ppl" if "ppl" in extras else "acc"  # per-length column: perplexity for language modelling
    trainer = results["config"]["trainer"]
    name = results.get("label", results["encoding"])
    width = max(24, len(name) + 2)
    # The constant-output ceiling bounds a NoPE *encoder*; for the generating families it is no bound.
    ceiling = results["constant_ceiling"] if results["model"] == "encoder" else None
    baselines = f"chance {results['chance']:.3f}" + (f", best constant output {ceiling:.3f}" if ceiling is not None else "")
    header = (
        f"\n{name} · {results['task']} · {results['model']} · seed {results['seed']}  "
        f"({trainer['max_steps']} steps on {results['device']}; {baselines})\n"
        f"{'':<{width}}" + " ".join(f"{key:>{8 if key == 'seq_acc' else _width(key)}}" for key in ["acc", "seq_acc", *extras]) + "  |" + " ".join(f"{heading:>{cell}}" for heading in headings)
    )
    rows = [_row(name, results["metrics"], scales.scores(results), columns, extras, by, width, cell)]
    if results["pe_off"] is not None:
        rows.append(_row("  same model, PE off", results["pe_off"], None, columns, extras, by, width, cell))
    twin = results["nope"]
    if twin is not None and twin["status"] == "diverged":
        rows.append(f"{'none (no-PE twin)':<{width}}diverged at step {twin['diverged_at']}")
    elif twin is not None:
        rows.append(_row("none (no-PE twin)", twin["metrics"], scales.scores(twin), columns, extras, by, width, cell))
    what = "perplexity" if by == "ppl" else "token accuracy"
    if axis == "size":
        note = "acc: accuracy on the in-distribution test set; Spx: accuracy on S x S-pixel images"
    else:
        note = f"acc: token accuracy on the in-distribution test set; len L: {what} at length L"
    if ceiling is not None:
        note += "\nbest constant output: the ceiling of a model that cannot tell target slots apart (NoPE encoder)"
    footer = [
        f"results:     {run_dir / 'results.json'}",
        f"logs:        {run_dir}",
        f"compare:     tensorboard --logdir {run_dir}",
    ]
    return "\n".join([header, *rows, note, "", *footer])


def catalogue() -> str:
    """Every registered encoding, model family and task with its one-line description."""
    from posbench.encodings import ENCODINGS
    from posbench.models import MODELS
    from posbench.tasks import TASKS

    width = max(len(name) for registry in (ENCODINGS, MODELS, TASKS) for name in registry.names())
    family = max(len(cls.family) for _, cls in ENCODINGS.items())
    lines = ["encodings (encoding=NAME):"]
    lines += [f"  {name:<{width}}  {cls.family:<{family}}  {axes(cls)}  {cls.description}" for name, cls in ENCODINGS.items()]
    lines += ["", "models (model=NAME):"]
    inputs = max(len(cls.inputs) for registry in (MODELS, TASKS) for _, cls in registry.items())
    lines += [f"  {name:<{width}}  {cls.inputs:<{inputs}}  {cls.description}" for name, cls in MODELS.items()]
    lines += ["", "tasks (task=NAME):"]
    lines += [
        f"  {name:<{width}}  {cls.inputs:<{inputs}}  {task_kind(cls):<7}  {cls.description}"
        for name, cls in TASKS.items()
    ]
    lines += ["", "experiments (posbench train -m experiment=NAME [budget=smoke|cpu|paper]):"]
    lines += [f"  {name:<{width}}  {paper}" for name, paper in experiments().items()]
    return "\n".join(lines)


def experiments() -> dict[str, str]:
    """Every experiment of ``configs/experiment/`` with the paper it reproduces."""
    import yaml

    folder = Path(__file__).parent / "configs" / "experiment"
    return {
        path.stem: yaml.safe_load(path.read_text())["reproduction"]["paper"] for path in sorted(folder.glob("*.yaml"))
    }


def axes(cls) -> str:
    """``1D`` (sequence positions; on an image, raster order), ``2D`` (image grid coordinates) or
    ``3D`` (M-RoPE's (t, h, w) of a sequence of image patches and text)."""
    return f"{cls.axes}D"


def task_kind(cls) -> str:
    """``data`` (a dataset), ``order`` (the answer depends on source order; an image task's: on
    where things are) or ``control``."""
    if cls.dataset_backed:
        return "data"
    return "order" if cls.order_sensitive else "control"

"""Pictures of one positional encoding: ``posbench plot`` (``posbench.plotting.command``) and the
few a run adds to its TensorBoard events (``add_to_tensorboard``).

The pictures are chosen by what the encoding is (``posbench.plotting.core``): each module of this
package registers the picture kinds it draws with the capability they need:

* ``absolute``: an input code (``embed``): the code, its dot products, and on an image grid each
  patch's similarity with the others (Dosovitskiy et al. 2021, fig. 7);
* ``offset``: the linear-offset property of an input code (Vaswani et al. 2017, §3.5);
* ``logit_term``: a term added to the attention logits (``bias``; ``score`` for q = k = 1);
* ``rotary``: the logit of a fixed query and key after ``rotate`` (Su et al. 2021, §3.4.3);
* ``conditional``: ``between_blocks`` and ``ffn`` hooks on a constant input;
* ``positions``: the positions a wrapper hands its base;
* ``nothing``: a page saying there is no position term (NoPE);
* ``attention``: a trained model's attention on one example (every layer and head).

The encoding drawn is the model's ``encoding`` (a captioner's text side, seq2seq's encoder), copied
to the CPU in evaluation mode, so drawing never changes the model it was taken from.
matplotlib (Agg, no display) is imported only when a figure is made.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch

from posbench.plotting import absolute, conditional, logit_term, nothing, offset, positions, rotary  # noqa: F401 (registers)
from posbench.plotting.core import KINDS, Kind, Picture, Subject, capable, changes_positions, walk

#: Pictures a run adds to TensorBoard at most.
TENSORBOARD_PICTURES = 2
#: Resolution of written PNG files.
DPI = 100


def lengths(model, task) -> tuple[int, int | None, int]:
    """Tokens of the longest evaluated sequence, of the longest training sequence (None for an
    image task, whose training images have one size) and the source tokens of the former."""
    longest = task.longest()
    length = model.positions_needed(task.source_len(longest), task.target_len(longest))
    trained = task.train_lengths[1]
    train = None if task.axis == "size" else model.positions_needed(task.source_len(trained), task.target_len(trained))
    return length, train, task.source_len(longest)


def subjects(model, task, heading: str) -> list[tuple[Subject, bool]]:
    """Every encoding to draw (the model's ``encoding`` and every encoding it holds), with whether
    it is a leaf; the encoding is a CPU copy in evaluation mode."""
    encoding = copy.deepcopy(model.encoding).float().cpu().eval()
    length, train, source = lengths(model, task)
    found, moved = [], []  # moved: the file prefixes of the composites that change the positions
    for enc, where, stem, leaf in walk(encoding):
        subject = Subject(enc, heading, length, train, source, model, where, stem)
        chooser = next((other for other in moved if stem.startswith(other)), None)
        if chooser is not None:
            subject.part += f" (drawn at positions 0..{subject.tokens - 1}; {chooser}positions.png: those it reads)"
        if not leaf and changes_positions(subject):
            moved.append(stem)
        found.append((subject, leaf))
    return found


def kinds_for(subject: Subject, leaf: bool, tensorboard: bool = False) -> list[Kind]:
    """The picture kinds that fit ``subject``: those whose capability it has and whose condition
    holds; for a leaf that has none, the page saying there is nothing to draw."""
    chosen = [
        kind for kind in KINDS
        if capable(subject, kind.needs, leaf) and (kind.when is None or kind.when(subject))
    ]
    if leaf and not chosen:
        chosen = [kind for kind in KINDS if kind.needs == "nothing"]
    return [kind for kind in chosen if kind.tensorboard or not tensorboard]


@torch.no_grad()
def draw(model, task, heading: str, tensorboard: bool = False, limit: int | None = None) -> list[Picture]:
    """The pictures of ``model``'s encoding for ``task``, named by their file stems (a part of a
    composite encoding prefixed with where it sits, e.g. ``parts1-alibi_bias_vs_distance``);
    ``tensorboard``: only the kinds meant for TensorBoard, at most ``limit`` pictures."""
    pictures = []
    for subject, leaf in subjects(model, task, heading):
        for kind in kinds_for(subject, leaf, tensorboard):
            if limit is not None and len(pictures) >= limit:
                return pictures
            drawn = kind.draw(subject)
            drawn.name = f"{subject.prefix_name}{drawn.name}"
            pictures.append(drawn)
    return pictures


def write(pictures: list[Picture], folder: Path) -> list[Path]:
    """Write each picture as ``<folder>/<name>.png`` (atomically); the paths written."""
    from posbench.training.files import atomic

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for drawn in pictures:
        path = folder / f"{drawn.name}.png"
        atomic(path, lambda handle, fig=drawn.figure: fig.savefig(handle, format="png", dpi=DPI))
        paths.append(path)
    return paths


def add_to_tensorboard(writer, model, cfg: dict, task, step: int, limit: int = TENSORBOARD_PICTURES) -> int:
    """Add up to ``limit`` pictures of ``model``'s encoding as trained (``cfg``: its normalised
    configuration) to ``writer`` as images ``encoding/<picture>`` at ``step``; returns how many."""
    from posbench.labels import describe
    from posbench.plotting.core import rgb

    heading = f"{describe(cfg)} — trained, at step {step}"
    pictures = draw(model, task, heading, tensorboard=True, limit=limit)
    for drawn in pictures:
        writer.add_image(f"encoding/{drawn.name}", rgb(drawn.figure), step, dataformats="HWC")
    return len(pictures)


def add_attention_to_tensorboard(writer, model, cfg: dict, batch, step: int) -> None:
    """Add the attention maps of ``model`` on the first example of ``batch`` (a batch of a task's
    test set) to ``writer`` as the image ``attention/test_example`` at ``step``."""
    from posbench.analysis.attention import attention_maps, encoding_stack
    from posbench.labels import describe
    from posbench.plotting.attention import attention_figure
    from posbench.plotting.core import rgb

    maps = attention_maps(model, batch)
    drawn = attention_figure(maps, f"{describe(cfg)} — trained, at step {step}", encoding_stack(model))
    writer.add_image("attention/test_example", rgb(drawn), step, dataformats="HWC")


def main(argv: list[str]) -> int:
    """``posbench plot ...`` (``posbench.plotting.command``)."""
    from posbench.plotting.command import main as command

    return command(argv)

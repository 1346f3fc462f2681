"""What every picture of an encoding shares: the ``Subject`` (one encoding of a built model and the
positions it reads there), the registry of picture kinds keyed by the capability each needs, and
the figure helpers (matplotlib's Agg canvas, imported only when a figure is made).

A picture is chosen by what an encoding *is*, never by its name: the hooks it overrides
(``posbench.encodings.base``: ``embed``, ``bias``, ``score``, ``rotate``, ``between_blocks``,
``ffn``, ``positions``), its ``axes`` and whether the model gives it an image grid. An encoding
that holds others (``wraps``: combo's parts, randomized's and fpe's base) is drawn through them,
each part under its own name, plus the positions it hands them when it changes them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from posbench.encodings.base import NO_POSITION, PositionalEncoding, grid_coordinates, overrides


def inner_encodings(encoding: PositionalEncoding) -> list[tuple[str, PositionalEncoding]]:
    """The encodings ``encoding`` holds, by the option holding them (``wraps``): ``[("base", rope)]``,
    ``[("parts[0]", learned), ("parts[1]", alibi)]``; empty for an encoding that holds none."""
    inner = []
    for option in encoding.wraps:
        held = getattr(encoding, option, None)
        if isinstance(held, PositionalEncoding):
            inner.append((option, held))
        elif isinstance(held, (nn.ModuleList, list, tuple)):
            inner += [(f"{option}[{i}]", part) for i, part in enumerate(held) if isinstance(part, PositionalEncoding)]
    return inner


@dataclass
class Subject:
    """One encoding to draw: a leaf of the model's encoding (or a composite, for its positions),
    with what the pictures say about where it sits."""

    encoding: PositionalEncoding
    #: First title line: the run in one line and whether it is trained, e.g.
    #: ``rope · copy · encoder · seed 0 — untrained (initialisation, seed 0)``.
    heading: str
    #: Tokens of the longest sequence the model is scored on (1D; on an image grid: the training grid's tokens).
    length: int
    #: Tokens of the longest training sequence (None on an image grid: one size).
    train_length: int | None
    #: Source tokens of the longest sequence (where a task's streams end, ``SequenceModel.timeline``).
    source_length: int
    model: Any
    #: Where the encoding sits inside a composite (``base rope of randomized(base=rope)``), or "".
    part: str = ""
    #: File-name prefix of its pictures (``base-rope_``), or "".
    prefix_name: str = ""
    #: Cache of computed arrays shared by several pictures of the same subject.
    cache: dict = field(default_factory=dict)

    @property
    def shape(self):
        return self.encoding.shape

    @property
    def grid(self) -> int | None:
        return self.shape.grid

    @property
    def prefix(self) -> int:
        """Tokens before the grid without a grid position (the class token)."""
        return self.shape.prefix if self.grid is not None else 0

    @property
    def tokens(self) -> int:
        """Tokens drawn: the training grid's (class token included) or the longest sequence's."""
        return self.prefix + self.grid**2 if self.grid is not None else self.length

    def token_positions(self) -> Tensor:
        """The positions the encoding reads for the drawn tokens: ``[1, T]`` indices, ``[1, T, 2]``
        grid coordinates (class token at ``NO_POSITION``), or ``[1, T, 3]`` (every axis the index)."""
        axes = self.encoding.axes
        if axes == 2 and self.grid is not None:
            return grid_coordinates(self.grid, self.prefix)
        index = torch.arange(self.tokens)[None]
        return index if axes == 1 else index[..., None].expand(1, self.tokens, axes)

    def patch_token(self, row: int, col: int) -> int:
        """The token index of grid patch (row, col) (raster order after the class token)."""
        return self.prefix + row * self.grid + col

    def query_patches(self) -> list[tuple[int, int]]:
        """A few query patches for maps over the grid: a corner, the centre, the opposite corner."""
        side = self.grid
        chosen = [(0, 0), (side // 2, side // 2), (side - 1, side - 1)]
        return list(dict.fromkeys(chosen))

    def grid_coords(self, points: Tensor) -> Tensor:
        """``[N, axes]`` coordinates -> what the encoding reads: ``[1, prefix + N, axes]`` for a 2D
        encoding (the class token first, at ``NO_POSITION``), ``[1, N, axes]`` (``[1, N]`` for axes 1)."""
        if self.encoding.axes == 1:
            return points[..., 0][None]
        if self.encoding.axes == 2 and self.prefix:
            points = torch.cat((points.new_full((self.prefix, points.shape[-1]), NO_POSITION), points))
        return points[None]

    def layers_alike(self, per_layer: list[Tensor]) -> list[int]:
        """The layers worth a panel: ``[0]`` when every layer gives the same values, else all of
        them (at most four)."""
        if all(torch.allclose(per_layer[0], other, rtol=0, atol=0, equal_nan=True) for other in per_layer[1:]):
            return [0]
        return list(range(min(len(per_layer), 4)))

    def layer_note(self, shown: list[int]) -> str:
        layers = self.shape.layers
        if shown == [0]:
            return "the same in every layer" if layers > 1 else "its one layer"
        return f"layers {', '.join(map(str, shown))} of {layers}"

    def title(self, what: str) -> str:
        """The figure title: the heading, then where the part sits and what is drawn."""
        where = f"{self.part}: " if self.part else ""
        return f"{self.heading}\n{where}{what}"


@dataclass
class Picture:
    """A drawn figure, its file stem and the numbers it shows (for tests and for readers)."""

    name: str
    figure: Any
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Kind:
    """A kind of picture: its file stem, the capability it needs, an extra condition on the
    subject, the drawing function, and whether a run adds it to TensorBoard."""

    name: str
    needs: str
    draw: Callable[[Subject], Picture]
    when: Callable[[Subject], bool] | None = None
    tensorboard: bool = False


#: Every kind of picture, in the order they are drawn (registered by the modules of this package).
KINDS: list[Kind] = []


def picture(name: str, needs: str, when: Callable[[Subject], bool] | None = None, tensorboard: bool = False):
    """Register a picture function for the encodings with capability ``needs`` (see ``capable``)."""

    def register(draw: Callable[[Subject], Picture]) -> Callable[[Subject], Picture]:
        if any(kind.name == name for kind in KINDS):
            raise RuntimeError(f"picture {name!r} is registered twice")
        KINDS.append(Kind(name, needs, draw, when, tensorboard))
        return draw

    return register


def read_positions(subject: Subject) -> tuple[Tensor, bool]:
    """What the model hands the encoding's ``positions`` hook for the drawn tokens (as
    ``Transformer.read_positions``): the stream times when it reads them and the task has streams,
    else the token positions. Also returns whether they are times."""
    enc = subject.encoding
    if enc.reads_time and subject.grid is None:
        times = subject.model.timeline(subject.source_length, subject.tokens, torch.device("cpu"))
        if times is not None:
            return times, True
    return subject.token_positions(), False


def changes_positions(subject: Subject) -> bool:
    """Whether the encoding's ``positions`` hook hands its hooks other positions than it is given."""
    if not overrides(subject.encoding, "positions"):
        return False
    given, _ = read_positions(subject)
    chosen = subject.encoding.positions(given)
    return chosen.shape != given.shape or not torch.equal(chosen.to(given.dtype), given)


def capable(subject: Subject, needs: str, leaf: bool) -> bool:
    """Whether the subject has capability ``needs``: a hook it overrides (a leaf's; a composite's
    hooks hand on to its parts, which are drawn themselves), ``positions`` when its positions hook
    changes the positions, ``nothing`` never (the fallback, see ``posbench.plotting.nothing``)."""
    if needs == "positions":
        return changes_positions(subject)
    if needs == "nothing" or not leaf:
        return False
    return overrides(subject.encoding, needs)


# ---- figures ---------------------------------------------------------------------------------
def figure(width: float, height: float):
    """A matplotlib figure on the Agg canvas (no pyplot, no display), laid out with constrained layout."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def suptitle(fig, text: str) -> None:
    """The figure's title, each line wrapped to the figure's width."""
    import textwrap

    chars = max(40, int(fig.get_figwidth() * 13))
    lines = [part for line in text.split("\n") for part in (textwrap.wrap(line, chars) or [""])]
    fig.suptitle("\n".join(lines), fontsize="medium")


def grid_maps(subject: Subject, maps, queries: list[tuple[int, int]], label: str, text: str):
    """A figure of maps over the grid, ``maps [heads, queries, side, side]``: one row per head, one
    column per query patch (marked ×)."""
    import numpy as np

    heads, side = len(maps), subject.grid
    fig = figure(max(2.8 * len(queries) + 1.5, 8), 2.6 * heads + 1.4)
    axes = fig.subplots(heads, len(queries), squeeze=False)
    style = symmetric(maps)
    for h in range(heads):
        for i, (row, col) in enumerate(queries):
            ax = axes[h, i]
            image = ax.imshow(maps[h, i], interpolation="nearest", **style)
            ax.plot(col, row, marker="x", color="black", markersize=9)
            ax.set_xticks(np.arange(side))
            ax.set_yticks(np.arange(side))
            ax.set(title=f"head {h}, query patch ({row}, {col})", xlabel="key column" if h == heads - 1 else None,
                   ylabel="key row" if i == 0 else None)
    fig.colorbar(image, ax=axes.ravel().tolist(), label=label, shrink=0.8)
    suptitle(fig, subject.title(text))
    return fig


def shade_beyond_training(ax, subject: Subject, distance) -> None:
    """Shade the distances ``|i - j|`` that no training sequence holds (beyond the longest one)."""
    import numpy as np

    if subject.train_length is None or subject.grid is not None:
        return
    limit = subject.train_length - 1 + 0.5
    low, high = float(np.min(distance)), float(np.max(distance))
    label = f"|i − j| > {subject.train_length - 1}: no training sequence is this long"
    for start, end in ((limit, high), (low, -limit)):
        if end > start:
            ax.axvspan(start, end + 0.5, color="grey", alpha=0.15, linewidth=0, label=label)
            label = None


def symmetric(values) -> dict:
    """imshow arguments for signed values: a diverging colour map centred on 0."""
    import numpy as np

    finite = np.asarray(values)[np.isfinite(values)]
    top = float(np.abs(finite).max()) if finite.size else 1.0
    top = top or 1.0
    return {"cmap": "RdBu_r", "vmin": -top, "vmax": top}


def rgb(fig, dpi: int = 80):
    """The figure rendered as an ``[H, W, 3]`` uint8 array (for TensorBoard's ``add_image``)."""
    import numpy as np

    fig.set_dpi(dpi)
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()


def walk(encoding: PositionalEncoding, where: str = "", stem: str = "") -> Iterator[tuple[PositionalEncoding, str, str, bool]]:
    """``(encoding, where it sits, file-name prefix, is a leaf)`` for ``encoding`` and, depth first,
    every encoding it holds."""
    inner = inner_encodings(encoding)
    yield encoding, where, stem, not inner
    for option, part in inner:
        part_where = f"encoding.{option} = {part.name}" + (f", inside {where}" if where else f" of encoding={encoding.name}")
        part_stem = f"{stem}{option.replace('[', '').replace(']', '')}-{part.name}_"
        yield from walk(part, part_where, part_stem)

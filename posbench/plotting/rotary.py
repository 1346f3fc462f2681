"""Pictures of an encoding that transforms queries and keys (the ``rotate`` hook: RoPE and its
``scale`` / ``ntk_alpha`` variants, xPos, M-RoPE, the 2D rotary encodings, SPE's codes, TUPE's
content scaling): the logit ``q' . k' / sqrt(d')`` that one fixed query and key vector get after
the hook, against the offset between their positions.

With ``q = k = (1, ..., 1)`` RoPE's logit is ``sum_i cos((m - n) theta_i)`` (times a constant),
whose envelope decays with the distance: RoFormer's long-term decay (Su et al. 2021, "RoFormer",
§3.4.3); xPos multiplies it by an exponential decay; position interpolation (``scale``) and NTK
rescaling (``ntk_alpha``) stretch it. A second panel uses random vectors ``q = k ~ N(0, I)`` (one
draw per line point, the mean over 32 draws). A parameter-free encoding configured with options
other than its defaults is drawn beside its defaults (dashed), so that what the options change is
visible.

Positions: the query sits at one position and the keys at every offset from it, along each axis
the encoding reads (one for 1D; row and column for 2D; t, h, w and all three together for
M-RoPE's 3 axes). On an image grid a second picture maps the logit of a few query patches
against every key patch of the training grid.
"""

from __future__ import annotations

import numpy as np
import torch

from posbench.encodings.base import ENCODINGS
from posbench.errors import ConfigError
from posbench.plotting.core import Picture, Subject, figure, grid_maps, picture, shade_beyond_training, suptitle

#: Offsets drawn along each axis (fewer where the encoding represents fewer positions).
OFFSETS = 256
#: Random query/key vectors averaged in the second panel.
DRAWS = 32
AXIS_NAMES = {1: ("position",), 2: ("row", "column"), 3: ("t", "h", "w")}


def logits(enc, vectors: torch.Tensor, q_pos: torch.Tensor, k_pos: torch.Tensor, prefix: int, layer: int) -> torch.Tensor:
    """``[B, heads, Nq, Nk]`` logits of ``vectors [B, heads, head_dim]`` placed as every query and
    every key at ``q_pos`` / ``k_pos`` (``prefix`` class tokens first in a 2D encoding's positions,
    dropped from the result), after the ``rotate`` hook, scaled as attention scales them."""
    q_count, k_count = q_pos.shape[1], k_pos.shape[1]
    q = vectors[:, :, None].expand(-1, -1, q_count, -1)
    k = vectors[:, :, None].expand(-1, -1, k_count, -1)
    q, k = enc.rotate(q.contiguous(), k.contiguous(), q_pos, k_pos, layer)
    out = (q.float() @ k.float().transpose(-2, -1)) * q.shape[-1] ** -0.5
    return out[:, :, prefix:, prefix:]


def offsets(subject: Subject) -> tuple[int, bool]:
    """How many offsets to draw and whether both signs are drawn (not under a causal mask)."""
    both = not subject.shape.causal
    count = max(OFFSETS, subject.tokens)
    limit = subject.encoding.max_positions()
    if limit is not None:
        count = min(count, (limit + 1) // 2 if both else limit)
    return count, both


def along(subject: Subject, axis: int | None, count: int, both: bool) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """Query and key positions for offsets along ``axis`` (None: every axis together): the query
    at ``count - 1``, the keys at ``0 .. count - 1`` (causal) or ``0 .. 2 count - 2``. Returns the
    positions as the encoding reads them and the offsets ``i - j``."""
    axes = subject.encoding.axes
    keys = torch.arange(2 * count - 1 if both else count)
    query = torch.tensor([count - 1])

    def coords(values: torch.Tensor) -> torch.Tensor:
        points = torch.zeros(len(values), axes, dtype=torch.long)
        if axis is None:
            points[:] = values[:, None]
        else:
            points[:, axis] = values
        return subject.grid_coords(points)

    return coords(query), coords(keys), (count - 1 - keys).numpy()


def unit_vectors(subject: Subject) -> torch.Tensor:
    return torch.ones(1, subject.shape.heads, subject.shape.head_dim)


def random_vectors(subject: Subject) -> torch.Tensor:
    """The same draws for every head, so that heads whose rotations are the same draw one curve and
    a difference between heads is the encoding's, not the sampling's."""
    generator = torch.Generator().manual_seed(0)
    draws = torch.randn(DRAWS, 1, subject.shape.head_dim, generator=generator)
    return draws.expand(DRAWS, subject.shape.heads, subject.shape.head_dim).clone()


def defaults_of(subject: Subject):
    """The encoding's class with its default options, when it has no parameters (its curve then
    depends on its options alone), else None."""
    enc = subject.encoding
    if any(True for _ in enc.parameters()):
        return None
    try:
        with torch.random.fork_rng():
            return ENCODINGS.get(enc.name)(enc.shape)
    except (ConfigError, TypeError):
        return None


@picture("rotary_logit", needs="rotate", tensorboard=True)
def against_offset(subject: Subject) -> Picture:
    enc, prefix = subject.encoding, subject.prefix if subject.encoding.axes == 2 else 0
    count, both = offsets(subject)
    names = AXIS_NAMES.get(enc.axes, tuple(f"axis {a}" for a in range(enc.axes)))
    panels = [(a, f"along {names[a]}") for a in range(enc.axes)] if enc.axes > 1 else [(0, "")]
    if enc.axes > 1:
        panels.append((None, "every axis together"))
    placed = [along(subject, axis, count, both) for axis, _ in panels]
    per_layer = [
        torch.stack([logits(enc, unit_vectors(subject), q_pos, k_pos, prefix, layer)[0, :, 0] for q_pos, k_pos, _ in placed])
        for layer in range(subject.shape.layers)
    ]
    layers_differ = subject.layers_alike(per_layer) != [0]
    reference = defaults_of(subject)
    fig = figure(13, 3.6 * len(panels) + 1.2)
    grid = fig.subplots(len(panels), 2, squeeze=False)
    data = {"panels": [name for _, name in panels], "distance": placed[0][2], "ones": per_layer[0].numpy(), "random": []}
    for row, ((axis, name), (q_pos, k_pos, distance)) in enumerate(zip(panels, placed)):
        order = np.argsort(distance)
        ones = per_layer[0][row].numpy()
        randoms = logits(enc, random_vectors(subject), q_pos, k_pos, prefix, 0)[:, :, 0].mean(0).numpy()
        data["random"].append(randoms)
        for column, (values, vectors) in enumerate(((ones, "q = k = (1, ..., 1)"), (randoms, f"q = k ~ N(0, I), mean of {DRAWS} draws"))):
            ax = grid[row, column]
            alike = all(np.allclose(values[0], other) for other in values[1:])
            for head, line in enumerate(values[:1] if alike else values):
                ax.plot(distance[order], line[order], linewidth=1, label="every head" if alike else f"head {head}")
            if reference is not None and column == 0:
                base = logits(reference, unit_vectors(subject), q_pos, k_pos, prefix, 0)[0, 0, 0].numpy()
                if not np.allclose(base, values[0]):
                    ax.plot(distance[order], base[order], color="grey", linestyle="--", linewidth=1,
                            label=f"{enc.name} with its default options")
                    data["defaults"] = base
            ax.axhline(0, color="grey", linewidth=0.5)
            shade_beyond_training(ax, subject, distance)
            unit = f"{names[axis]} offset" if axis is not None and enc.axes > 1 else "offset"
            side = "key before the query" if not both else "positive: key before the query"
            ax.set(xlabel=f"i − j: query minus key {unit} ({side})", ylabel="logit q'·k'/√d'",
                   title=f"{vectors}" + (f", {name}" if name else ""))
            ax.legend(fontsize="x-small")
    layer_note = "layer 0 (layers differ)" if layers_differ else subject.layer_note([0])
    suptitle(
        fig,
        subject.title(
            f"attention logit of a fixed query and key after the rotate hook, against their offset; {layer_note}\n"
            "(long-term decay: Su et al. 2021, RoFormer §3.4.3)"
        ),
    )
    return Picture("rotary_logit", fig, data)


@picture("rotary_grid", needs="rotate", when=lambda subject: subject.grid is not None, tensorboard=True)
def on_grid(subject: Subject) -> Picture:
    enc, side, queries = subject.encoding, subject.grid, subject.query_patches()
    pos = subject.token_positions()
    full = logits(enc, unit_vectors(subject), pos, pos, 0, 0)[0].numpy()  # [heads, T, T]
    patches = [subject.patch_token(row, col) for row in range(side) for col in range(side)]
    maps = np.stack([[full[h, subject.patch_token(*q), patches].reshape(side, side) for q in queries] for h in range(min(len(full), 4))])
    text = "logit of q = k = (1, ..., 1) after the rotate hook, for a query patch (×) against every key patch, layer 0"
    fig = grid_maps(subject, maps, queries, "logit q'·k'/√d'", text)
    return Picture("rotary_grid", fig, {"maps": maps, "queries": queries})

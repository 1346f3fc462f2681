"""Pictures of a term added to the attention logits: the ``bias`` hook (ALiBi, T5, KERPLE, FIRE,
dynamic position bias, TUPE's position term, Swin's 2D table...) and the ``score`` hook (Shaw et
al., Transformer-XL, CoPE, 2D relative keys).

* against relative distance (1D positions): the term at one query, against the key's offset
  ``i - j``, one line per head (per layer where layers differ); causal attention only shows
  ``j <= i``, the keys a causal query sees;
* as a matrix over (query i, key j), one panel per head: a term that is not a function of
  ``i - j`` alone (FIRE, TUPE) shows it there;
* on an image grid: the term of a few query patches against every key patch, one map each.

A ``score`` term depends on the query (and CoPE's on the keys too): it is drawn for the
representative ``q = k = (1, ..., 1)`` in every head, which the titles say.
"""

from __future__ import annotations

import numpy as np
import torch

from posbench.plotting.core import (
    Picture,
    Subject,
    figure,
    grid_maps,
    overrides,
    picture,
    shade_beyond_training,
    suptitle,
    symmetric,
)

#: Heads drawn as separate panels at most (a matrix or map per head).
MAX_HEAD_PANELS = 8


def terms(subject: Subject, hook: str) -> list[torch.Tensor]:
    """The hook's term over every pair of drawn tokens, per layer: ``[heads, T, T]`` (NaN where a
    causal query cannot see the key)."""
    key = f"terms_{hook}"
    if key not in subject.cache:
        enc, tokens, heads = subject.encoding, subject.tokens, subject.shape.heads
        pos = subject.token_positions()
        ones = torch.ones(1, heads, tokens, subject.shape.head_dim)
        per_layer = []
        for layer in range(subject.shape.layers):
            if hook == "bias":
                term = enc.bias(pos, pos, layer)
            else:
                term = enc.score(ones, ones, pos, pos, layer)
            term = (torch.zeros(1, heads, tokens, tokens) if term is None else term.float()).expand(1, heads, tokens, tokens)[0]
            if subject.shape.causal:
                term = term.masked_fill(torch.ones(tokens, tokens, dtype=torch.bool).triu(1), float("nan"))
            per_layer.append(term.double())
        subject.cache[key] = per_layer
    return subject.cache[key]


def what(subject: Subject, hook: str) -> str:
    if hook == "bias":
        return "bias added to the attention logits (bias hook)"
    text = "score term added to the attention logits (score hook) for q = k = (1, ..., 1) in every head"
    if overrides(subject.encoding, "value"):
        text += "; its value term is not drawn"
    return text


def query_index(subject: Subject) -> int:
    """The query drawn against every key: the last token under a causal mask (it sees them all),
    else the middle one (keys on both sides)."""
    return subject.tokens - 1 if subject.shape.causal else subject.tokens // 2


def against_distance(subject: Subject, hook: str) -> Picture:
    per_layer = terms(subject, hook)
    shown = subject.layers_alike(per_layer)
    query = query_index(subject)
    keys = np.arange(query + 1) if subject.shape.causal else np.arange(subject.tokens)
    distance = query - keys
    order = np.argsort(distance)
    fig = figure(max(5.5 * len(shown) + 1.5, 8), 4.8)
    axes = np.atleast_1d(fig.subplots(1, len(shown), squeeze=False)[0])
    values = np.stack([per_layer[layer][:, query, keys].numpy() for layer in shown])  # [layers, heads, keys]
    for ax, layer, rows in zip(axes, shown, values):
        alike = all(np.allclose(rows[0], other, equal_nan=True) for other in rows[1:])
        for head, row in enumerate(rows[:1] if alike else rows):
            ax.plot(distance[order], row[order], marker=".", markersize=4, label="every head" if alike else f"head {head}")
        ax.axhline(0, color="grey", linewidth=0.5)
        shade_beyond_training(ax, subject, distance)
        if not np.nanmax(np.abs(rows), initial=0.0):
            ax.text(0.5, 0.6, "0 everywhere (e.g. a table that starts at zero)", transform=ax.transAxes, ha="center")
        side = "> 0: key before the query" + ("" if subject.shape.causal else ", < 0: after it")
        ax.set(xlabel=f"i − j: query minus key position ({side})", ylabel="logit term",
               title=f"layer {layer}" if len(shown) > 1 else subject.layer_note(shown))
        ax.legend(fontsize="x-small", ncol=2)
    suptitle(fig, subject.title(f"{what(subject, hook)}, at query i = {query}, against distance"))
    return Picture(f"{hook}_vs_distance", fig, {"distance": distance, "values": values, "query": query, "layers": shown})


def matrices(subject: Subject, hook: str) -> Picture:
    term = terms(subject, hook)[0].numpy()
    heads = min(len(term), MAX_HEAD_PANELS)
    fig = figure(max(3.2 * heads + 1.5, 8), 4.6)
    axes = fig.subplots(1, heads, squeeze=False)[0]
    style = symmetric(term[:heads])
    for head, ax in enumerate(axes):
        image = ax.imshow(term[head], interpolation="nearest", **style)
        ax.set(title=f"head {head}", xlabel="key position j", ylabel="query position i" if head == 0 else None)
    fig.colorbar(image, ax=list(axes), label="logit term", shrink=0.9)
    masked = " (blank: keys a causal query does not see)" if subject.shape.causal else ""
    more = f" (heads 0..{heads - 1} of {len(term)})" if heads < len(term) else ""
    suptitle(fig, subject.title(f"{what(subject, hook)}: every (query, key) pair, layer 0{masked}{more}"))
    return Picture(f"{hook}_matrix", fig, {"values": term})


def on_grid_maps(subject: Subject, hook: str) -> Picture:
    term = terms(subject, hook)[0].numpy()
    side, queries = subject.grid, subject.query_patches()
    patches = [subject.patch_token(row, col) for row in range(side) for col in range(side)]
    maps = np.stack([[term[h, subject.patch_token(*q), patches].reshape(side, side) for q in queries] for h in range(min(len(term), 4))])
    text = f"{what(subject, hook)}\nfor a query patch (×) against every key patch, layer 0 (class token not shown)"
    return Picture(f"{hook}_grid", grid_maps(subject, maps, queries, "logit term", text), {"maps": maps, "queries": queries})


def one_dimensional(subject: Subject) -> bool:
    return subject.encoding.axes == 1


def on_grid(subject: Subject) -> bool:
    return subject.grid is not None


for _hook, _tensorboard in (("bias", True), ("score", True)):
    picture(f"{_hook}_vs_distance", needs=_hook, when=one_dimensional, tensorboard=_tensorboard)(
        lambda subject, hook=_hook: against_distance(subject, hook)
    )
    picture(f"{_hook}_matrix", needs=_hook, when=lambda subject: not on_grid(subject))(
        lambda subject, hook=_hook: matrices(subject, hook)
    )
    picture(f"{_hook}_grid", needs=_hook, when=on_grid, tensorboard=_tensorboard)(
        lambda subject, hook=_hook: on_grid_maps(subject, hook)
    )

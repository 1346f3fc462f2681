"""Pictures of an encoding that adds a code to the input (the ``embed`` hook): the code itself,
position by dimension; the dot product of every pair of codes and its dependence on distance; and,
on an image grid, each patch's cosine similarity with every other patch, the picture of ViT's
learned position embeddings (Dosovitskiy et al. 2021, "An Image is Worth 16x16 Words", fig. 7).

The code is read through the hook itself, ``PE(p) = embed(0, p)``: what the encoding adds to a zero
token embedding (every ``embed`` encoding adds its code), so any such encoding is drawn alike.
"""

from __future__ import annotations

import numpy as np
import torch

from posbench.plotting.core import Picture, Subject, figure, picture, suptitle, symmetric


def codes(subject: Subject) -> np.ndarray:
    """``[T, d_model]``: the code added at each drawn token (``embed`` of a zero embedding)."""
    if "codes" not in subject.cache:
        enc, tokens = subject.encoding, subject.tokens
        zeros = torch.zeros(1, tokens, enc.shape.d_model)
        subject.cache["codes"] = enc.embed(zeros, subject.token_positions())[0].double().numpy()
    return subject.cache["codes"]


def token_axis(subject: Subject) -> str:
    if subject.grid is not None:
        first = "0 = class token, then " if subject.prefix else ""
        return f"token ({first}patches in raster order)"
    return "position p (token index)"


@picture("pe_heatmap", needs="embed", tensorboard=True)
def heatmap(subject: Subject) -> Picture:
    values = codes(subject)
    fig = figure(8.5, 5.5)
    ax = fig.subplots()
    image = ax.imshow(values, aspect="auto", interpolation="nearest", **symmetric(values))
    fig.colorbar(image, ax=ax, label="PE(p)_i: value added to the token embedding")
    train = subject.train_length
    if train is not None and train < len(values):
        ax.axhline(train - 0.5, color="black", linestyle="--", linewidth=1.5, label="end of the longest training sequence")
        ax.legend(loc="lower left", fontsize="small", framealpha=0.9)
    ax.set(xlabel=f"dimension i of the code (d_model = {values.shape[1]})", ylabel=token_axis(subject))
    suptitle(fig, subject.title(f"position code PE(p) = embed(0, p) for {len(values)} tokens"))
    return Picture("pe_heatmap", fig, {"codes": values})


def distances(subject: Subject) -> np.ndarray:
    """``[N, N]`` distance between the drawn tokens: |i - j| on a sequence; on a grid the
    Euclidean distance between patches (class token excluded, see ``grid_tokens``)."""
    if subject.grid is None:
        index = np.arange(subject.tokens)
        return np.abs(index[:, None] - index[None, :]).astype(float)
    rows, cols = np.divmod(np.arange(subject.grid**2), subject.grid)
    return np.hypot(rows[:, None] - rows[None, :], cols[:, None] - cols[None, :])


@picture("pe_similarity", needs="embed")
def similarity(subject: Subject) -> Picture:
    values = codes(subject)
    products = values @ values.T
    fig = figure(11, 4.8)
    left, right = fig.subplots(1, 2)
    image = left.imshow(products, interpolation="nearest", cmap="viridis")
    fig.colorbar(image, ax=left)
    for axis in (left.xaxis, left.yaxis):
        axis.get_major_locator().set_params(integer=True)
    left.set(xlabel=token_axis(subject).replace("position p", "position j"), ylabel=token_axis(subject).replace("position p", "position i"),
             title="PE(i) · PE(j), every pair of tokens")
    patches = products[subject.prefix :, subject.prefix :]
    dist = distances(subject)
    levels = np.unique(np.round(dist, 6))
    means, lows, highs = [], [], []
    for level in levels:
        chosen = patches[np.isclose(dist, level)]
        means.append(chosen.mean())
        lows.append(chosen.min())
        highs.append(chosen.max())
    right.plot(levels, means, marker="o", markersize=3, label="mean over pairs")
    right.fill_between(levels, lows, highs, alpha=0.25, label="min–max over pairs")
    if subject.grid is None:
        right.set(xlabel="distance |i − j| (positions)")
    else:
        right.set(xlabel="distance between patches (in patches, Euclidean; class token left out)")
    right.set(ylabel="PE(i) · PE(j)", title="against distance")
    right.legend(fontsize="small")
    suptitle(fig, subject.title("dot product of the position codes"))
    return Picture("pe_similarity", fig, {"products": products, "distance": levels, "mean": np.array(means)})


@picture("pe_grid_similarity", needs="embed", when=lambda subject: subject.grid is not None, tensorboard=True)
def grid_similarity(subject: Subject) -> Picture:
    """Each patch's cosine similarity with every patch, one small map per patch laid out on the
    grid (Dosovitskiy et al. 2021, fig. 7)."""
    side = subject.grid
    patches = codes(subject)[subject.prefix :]
    norms = np.linalg.norm(patches, axis=1, keepdims=True)
    unit = patches / np.where(norms > 0, norms, 1.0)
    cosine = unit @ unit.T  # [N, N]
    mosaic = np.full((side * (side + 1) - 1, side * (side + 1) - 1), np.nan)
    for row in range(side):
        for col in range(side):
            block = cosine[row * side + col].reshape(side, side)
            top, left = row * (side + 1), col * (side + 1)
            mosaic[top : top + side, left : left + side] = block
    fig = figure(8, 7)
    ax = fig.subplots()
    low = min(float(np.nanmin(mosaic)), 0.999)  # the colours span the values drawn, up to 1 (a patch with itself)
    image = ax.imshow(mosaic, cmap="viridis", vmin=low, vmax=1, interpolation="nearest")
    fig.colorbar(image, ax=ax, label=f"cosine similarity of position codes (colours: {low:.2f} to 1)", shrink=0.8)
    ticks = [i * (side + 1) + (side - 1) / 2 for i in range(side)]
    ax.set_xticks(ticks, range(side))
    ax.set_yticks(ticks, range(side))
    ax.set(xlabel="input patch column", ylabel="input patch row")
    suptitle(
        fig,
        subject.title(
            f"cosine similarity of each patch's code (small map at its row, col) with every patch of the {side}x{side} grid\n"
            "(as Dosovitskiy et al. 2021, fig. 7)"
        )
    )
    return Picture("pe_grid_similarity", fig, {"cosine": cosine})

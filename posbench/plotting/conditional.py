"""Pictures of an encoding without a position table that acts on the tokens themselves: the
``between_blocks`` hook (CPVT's position encoding generator, Chu et al. 2021) and the ``ffn`` hook
(SegFormer's Mix-FFN, Xie et al. 2021). Such an encoding knows no position except through the
zero padding of its convolution at the grid's border; the picture shows exactly that: the hook is
applied to a constant input (every token the same vector of ones), where any difference between
tokens can only come from where they are. Drawn per layer in which the hook acts:
``||f(1)_p - f(1)_c||``, the distance of each token's output from the output at a reference token
c (the grid's centre patch, or the middle of a sequence): 0 where position is invisible.
"""

from __future__ import annotations

import numpy as np
import torch

from posbench.plotting.core import Picture, Subject, figure, picture, suptitle

HOOK_WIDTH = {"between_blocks": "d_model", "ffn": "ffn_mult * d_model"}


def responses(subject: Subject, hook: str) -> list[tuple[int, np.ndarray]]:
    """``(layer, [tokens] distance from the reference token)`` for every layer the hook changes."""
    shape, tokens = subject.shape, subject.tokens
    width = shape.d_model if hook == "between_blocks" else shape.ffn_mult * shape.d_model
    pos = subject.token_positions()
    ones = torch.ones(1, tokens, width)
    acting = []
    for layer in range(shape.layers):
        out = getattr(subject.encoding, hook)(ones, pos, layer)[0].double()
        if torch.equal(out, ones[0].double()):
            continue
        drawn = out[subject.prefix :]
        reference = subject.grid // 2 * (subject.grid + 1) if subject.grid is not None else len(drawn) // 2
        acting.append((layer, (drawn - drawn[reference]).norm(dim=-1).numpy()))
    return acting


def draw(subject: Subject, hook: str) -> Picture:
    acting = responses(subject, hook)
    shown = acting[:4]
    fig = figure(max(4.4 * len(shown) + 2, 7), 5)
    if not shown:
        fig.text(0.5, 0.5, f"the {hook} hook changes no layer's constant input", ha="center", va="center")
    else:
        axes = fig.subplots(1, len(shown), squeeze=False)[0]
        top = max(float(values.max()) for _, values in shown) or 1.0
        for ax, (layer, values) in zip(axes, shown):
            if subject.grid is not None:
                side = subject.grid
                image = ax.imshow(values.reshape(side, side), interpolation="nearest", cmap="magma", vmin=0, vmax=top)
                ax.plot(side // 2, side // 2, marker="x", color="cyan", markersize=9)
                ax.set_xticks(np.arange(side))
                ax.set_yticks(np.arange(side))
                ax.set(xlabel="patch column", ylabel="patch row")
            else:
                ax.plot(values, marker=".")
                ax.set(xlabel="position (token index)", ylabel="distance", ylim=(0, top * 1.05))
            ax.set(title=f"after block {layer}" if hook == "between_blocks" else f"feed-forward of block {layer}")
        if subject.grid is not None:
            fig.colorbar(image, ax=list(axes), label="||f(1)_p − f(1)_c|| (× = c)", shrink=0.85)
    more = f" (first 4 of {len(acting)} layers it acts in)" if len(acting) > 4 else ""
    suptitle(
        fig,
        subject.title(
            f"{hook} hook applied to a constant input (all ones, width {HOOK_WIDTH[hook]}): how far each token's output "
            f"is from the centre token's{more}\nposition enters only where this is not 0 (the zero padding at the border); "
            "class token not shown"
        )
    )
    return Picture(f"{hook}_constant_input", fig, {"layers": [layer for layer, _ in acting], "distances": [v for _, v in acting]})


@picture("between_blocks_constant_input", needs="between_blocks", tensorboard=True)
def between_blocks(subject: Subject) -> Picture:
    return draw(subject, "between_blocks")


@picture("ffn_constant_input", needs="ffn", tensorboard=True)
def ffn(subject: Subject) -> Picture:
    return draw(subject, "ffn")

"""The picture of an encoding with no position term to draw: NoPE (Kazemnejad et al. 2023), or
an encoding that acts only through hooks no picture kind draws. It states what the encoding is and
why nothing is drawn, so that an empty folder is never mistaken for a failure."""

from __future__ import annotations

import textwrap

from posbench.encodings.base import HOOKS, overrides
from posbench.plotting.core import Picture, Subject, figure, picture, suptitle


@picture("no_position_term", needs="nothing", tensorboard=True)
def nothing(subject: Subject) -> Picture:
    enc = subject.encoding
    hooks = [hook for hook in HOOKS if overrides(enc, hook)]
    if hooks:
        why = f"It acts through the {', '.join(hooks)} hook(s), which posbench plot has no picture for."
    else:
        why = (
            "It overrides none of the hooks through which position can enter a model "
            f"({', '.join(HOOKS)}): there is no position term to draw."
        )
    text = "\n".join(textwrap.wrap(f"encoding={enc.name} ({enc.family}): {enc.description}.", 90))
    text += "\n\n" + "\n".join(textwrap.wrap(why, 90))
    fig = figure(8, 3.2)
    fig.text(0.5, 0.5, text, ha="center", va="center", fontsize="medium", wrap=True)
    suptitle(fig, subject.title("nothing to draw"))
    return Picture("no_position_term", fig, {"hooks": hooks})

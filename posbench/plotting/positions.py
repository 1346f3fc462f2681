"""Picture of an encoding that chooses the positions its hooks read (the ``positions`` hook):
randomized positional encodings draw sorted random positions from a wider range (Ruoss et al.
2023), FPE places each token at its time on the shared timeline of streams sampled at different
rates (Harzig et al. 2021). Drawn: the position each token of the longest sequence gets, in
evaluation mode, and in training mode (up to three successive draws) where that differs.
"""

from __future__ import annotations

import copy

import numpy as np

from posbench.plotting.core import Picture, Subject, figure, picture, read_positions, suptitle

#: Training-mode draws shown besides the evaluation positions.
TRAINING_DRAWS = 3


@picture("positions", needs="positions", tensorboard=True)
def positions(subject: Subject) -> Picture:
    given, times = read_positions(subject)
    evaluation = subject.encoding.positions(given)[0].double().numpy()
    trainer = copy.deepcopy(subject.encoding).train()  # a copy: a draw advances the encoding's own counter
    draws = []
    for _ in range(TRAINING_DRAWS):
        drawn = trainer.positions(given)[0].double().numpy()
        if drawn.shape != evaluation.shape or not np.array_equal(drawn, evaluation):
            draws.append(drawn)
    fig = figure(9, 5)
    ax = fig.subplots()
    index = np.arange(len(evaluation))
    for number, drawn in enumerate(draws):
        ax.plot(index, drawn.reshape(len(index), -1), marker=".", linestyle=":", alpha=0.6,
                label=f"training, draw {number + 1}")
    ax.plot(index, evaluation.reshape(len(index), -1), marker="o", markersize=3, color="black", label="evaluation")
    source = "the times on the task's streams' timeline" if times else f"the token indices 0..{len(index) - 1}"
    ax.set(xlabel="token (index in the sequence)", ylabel="position its hooks read")
    ax.legend(fontsize="small")
    suptitle(
        fig,
        subject.title(f"positions handed to the inner encoding for a sequence of {len(index)} tokens, given {source}")
    )
    return Picture("positions", fig, {"evaluation": evaluation, "training": draws, "times": times})

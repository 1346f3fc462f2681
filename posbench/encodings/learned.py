"""Learned absolute position embeddings: a trainable table E[p] added to the token embeddings
(Gehring et al. 2017 "Convolutional Sequence to Sequence Learning"; BERT, GPT-2). It cannot
represent positions beyond its table, so a run whose longest evaluation sequence exceeds
``max_len`` is refused before training.

``learned_scaled``: the same table multiplied by ``sqrt(d_model)`` before it is added,

    x + sqrt(d_model) * E[p]

the multiplier Vaswani et al. 2017 §3.4 apply to embedding weights, applied here to the position
table as tutorial implementations do (posbench's token embeddings are owned by the model and are
not rescaled). With the same ``init_std`` as ``learned`` the added codes start ``sqrt(d_model)``
times larger (std 0.16 instead of 0.02 at d_model=64), and every gradient step moves them
``d_model`` times further: a re-parameterisation that changes the effective initial scale and
learning rate of the table, not what it can represent.
"""

from __future__ import annotations

import math

from torch import Tensor, nn

from posbench.encodings.base import ENCODINGS, AttentionShape, PositionalEncoding
from posbench.schema import NonNegativeFloat, PositiveInt


@ENCODINGS.register("learned")
class Learned(PositionalEncoding):
    description = "trainable absolute table added to the input (Gehring et al. 2017; BERT/GPT-2)"
    family = "absolute"
    shift_invariant = False

    def __init__(self, shape: AttentionShape, max_len: PositiveInt = 256, init_std: NonNegativeFloat = 0.02):
        super().__init__(shape)
        self.table = nn.Embedding(max_len, shape.d_model)
        nn.init.normal_(self.table.weight, std=init_std)

    def max_positions(self) -> int:
        return self.table.num_embeddings

    def code(self, pos: Tensor) -> Tensor:
        """The vector added to the token embedding at each position: ``[*pos.shape, d_model]``."""
        return self.table(pos)

    def embed(self, x: Tensor, pos: Tensor) -> Tensor:
        return x + self.code(pos).to(x.dtype)


@ENCODINGS.register("learned_scaled")
class LearnedScaled(Learned):
    description = "trainable absolute table times sqrt(d_model), added to the input (Vaswani et al. 2017 §3.4 scaling)"

    def code(self, pos: Tensor) -> Tensor:
        return math.sqrt(self.shape.d_model) * super().code(pos)

"""Learned absolute position embeddings: a trainable table E[p] added to the token embeddings
(Gehring et al. 2017 "Convolutional Sequence to Sequence Learning"; BERT, GPT-2). It cannot
represent positions beyond its table, so a run whose longest evaluation sequence exceeds
``max_len`` is refused before training."""

from __future__ import annotations

from torch import Tensor, nn

from posbench.encodings.base import ENCODINGS, AttentionShape, PositionalEncoding


@ENCODINGS.register("learned")
class Learned(PositionalEncoding):
    description = "trainable absolute table added to the input (Gehring et al. 2017; BERT/GPT-2)"
    family = "absolute"
    shift_invariant = False

    def __init__(self, shape: AttentionShape, max_len: int = 256, init_std: float = 0.02):
        super().__init__(shape)
        self.table = nn.Embedding(int(max_len), shape.d_model)
        nn.init.normal_(self.table.weight, std=init_std)

    def max_positions(self) -> int:
        return self.table.num_embeddings

    def embed(self, x: Tensor, pos: Tensor) -> Tensor:
        return x + self.table(pos).to(x.dtype)

"""Adaptive (length-aware) absolute encoding: a learned linear map of two position features,

    x + W [p / max_len, p / L]            W in R^(d_model x 2), no bias

where ``L = x.shape[1]`` is the length of the current sequence and ``max_len`` a fixed normaliser.
The first feature is the absolute position on a fixed scale, the second the position relative to
the sequence's length (0 at the start, approaching 1 at the end, as in fractional / normalised
positions), so the code knows both "how far in" and "how far through". A posbench ablation
composed from these two features rather than one paper's method.

Conventions (and why):

* No bias: a bias would add the same vector at every position, carrying no position information
  (the token embeddings can absorb it); so position 0 has the zero code. ``W`` keeps the
  ``nn.Linear`` initialisation, U(-1/sqrt(2), 1/sqrt(2)) per entry (fan-in 2).
* No hard limit: ``p / max_len`` simply exceeds 1 beyond ``max_len`` and the linear map extrapolates
  linearly, so ``max_positions()`` is None and no run is refused. ``max_len`` only sets the scale of
  the first feature; the default 64 keeps it within [0, 1] for the default tasks' longest
  evaluation sequences (41 positions).
* Causal models: ``L`` is the length of the whole input, so under teacher forcing every token's code
  depends on how many tokens follow it (their number, never their content), while greedy decoding
  recomputes the codes on the growing prefix (the newest token always has ``p / L = (L - 1) / L``).
  This is what the definition says; in a decoder it is a train/generation mismatch to keep in mind
  when reading its results.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from posbench.encodings.base import ENCODINGS, AttentionShape, PositionalEncoding
from posbench.schema import PositiveFloat


@ENCODINGS.register("adaptive")
class Adaptive(PositionalEncoding):
    description = "learned linear map of [p / max_len, p / seq_len] added to the input (posbench length-aware ablation)"
    family = "absolute"
    shift_invariant = False

    def __init__(self, shape: AttentionShape, max_len: PositiveFloat = 64):
        super().__init__(shape)
        self.max_len = float(max_len)
        self.proj = nn.Linear(2, shape.d_model, bias=False)

    def features(self, pos: Tensor, seq_len: int) -> Tensor:
        """``[p / max_len, p / seq_len]`` for every position: ``[*pos.shape, 2]`` (float32)."""
        p = pos.to(torch.float32)
        return torch.stack((p / self.max_len, p / seq_len), dim=-1)

    def embed(self, x: Tensor, pos: Tensor) -> Tensor:
        return x + self.proj(self.features(pos, x.shape[1])).to(x.dtype)

"""Encoder-only family: bidirectional attention over ``source, SEP, BLANK x T``; the output at
each of the T empty slots predicts one target token (the setup of Ruoss et al. 2023,
"Randomized Positional Encodings Boost Length Generalization of Transformers").

Without a positional encoding every BLANK slot sees the same multiset of tokens, so all slots
output the same prediction: copy, reverse and sort are then provably unsolvable beyond chance.
"""

from __future__ import annotations

import torch
from torch import Tensor

from posbench.models.base import MODELS, SequenceModel


@MODELS.register("encoder")
class Encoder(SequenceModel):
    description = "bidirectional encoder; target emitted into empty slots after the source (Ruoss et al. 2023)"
    causal = False

    def layout(self, src: Tensor, tgt_len: int) -> Tensor:
        batch = src.shape[0]
        sep = src.new_full((batch, 1), self.sep)
        blanks = src.new_full((batch, tgt_len), self.blank)
        return torch.cat((src, sep, blanks), dim=1)

    def run(self, src: Tensor, tgt_len: int) -> Tensor:
        """Logits at the ``tgt_len`` empty slots."""
        tokens = self.layout(src, tgt_len)
        return self.net(tokens, times=self.timeline(src.shape[1], tokens.shape[1], src.device))[:, -tgt_len:]

    def target_logits(self, src: Tensor, tgt: Tensor) -> Tensor:
        return self.run(src, tgt.shape[1])

    @torch.no_grad()
    def predict(self, src: Tensor, tgt_len: int) -> Tensor:
        return self.run(src, tgt_len).argmax(-1)

    def positions_needed(self, src_len: int, tgt_len: int) -> int:
        return src_len + 1 + tgt_len

"""Decoder-only family: a causal language model over ``source, SEP, target``.

Training is teacher-forced with the loss on target tokens only; evaluation generates the target
greedily, one token at a time, from ``source, SEP``. A causal mask alone gives a NoPE decoder some
sense of position (Kazemnejad et al. 2023), which the encoder family does not have.
"""

from __future__ import annotations

import torch
from torch import Tensor

from posbench.models.base import MODELS, SequenceModel


@MODELS.register("decoder")
class Decoder(SequenceModel):
    description = "causal LM on source + SEP + target, loss on target, greedy decoding at eval"
    causal = True

    def prompt(self, src: Tensor) -> Tensor:
        return torch.cat((src, src.new_full((src.shape[0], 1), self.sep)), dim=1)

    def target_logits(self, src: Tensor, tgt: Tensor) -> Tensor:
        tokens = torch.cat((self.prompt(src), tgt[:, :-1]), dim=1)
        return self.net(tokens)[:, src.shape[1] :]

    @torch.no_grad()
    def predict(self, src: Tensor, tgt_len: int) -> Tensor:
        tokens = self.prompt(src)
        for _ in range(tgt_len):
            next_token = self.net(tokens)[:, -1].argmax(-1, keepdim=True)
            tokens = torch.cat((tokens, next_token), dim=1)
        return tokens[:, src.shape[1] + 1 :]

    def positions_needed(self, src_len: int, tgt_len: int) -> int:
        return src_len + tgt_len

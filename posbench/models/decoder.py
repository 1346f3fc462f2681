"""Decoder-only family: a causal language model over ``source, SEP, target``.

Training is teacher-forced with the loss on target tokens only; evaluation generates the target
greedily, one token at a time, from ``source, SEP`` (stopping once every answer has emitted
``eos``). A causal mask alone gives a NoPE decoder some sense of position (Kazemnejad et al.
2023), which the encoder family does not have.
"""

from __future__ import annotations

import torch
from torch import Tensor

from posbench.models.base import MODELS, SequenceModel


@MODELS.register("decoder")
class Decoder(SequenceModel):
    description = "causal LM on source + SEP + target, loss on target, greedy decoding at eval"
    causal = True

    def run(self, tokens: Tensor, src_len: int) -> Tensor:
        return self.net(tokens, times=self.timeline(src_len, tokens.shape[1], tokens.device))

    def target_logits(self, src: Tensor, tgt: Tensor) -> Tensor:
        tokens = torch.cat((src, self.teacher_inputs(tgt)), dim=1)
        return self.run(tokens, src.shape[1])[:, src.shape[1] :]

    @torch.no_grad()
    def predict(self, src: Tensor, tgt_len: int) -> Tensor:
        prompt = torch.cat((src, src.new_full((src.shape[0], 1), self.sep)), dim=1)
        return self.greedy(lambda tokens: self.run(tokens, src.shape[1])[:, -1], prompt, tgt_len)

    def positions_needed(self, src_len: int, tgt_len: int) -> int:
        return src_len + tgt_len

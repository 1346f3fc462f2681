"""The model-family contract: how a family consumes a task's (source, target) sequences.

Tasks produce integer symbols ``0 .. vocab_size-1``. A family appends its own special tokens
(``SEP`` between source and target, ``BLANK`` for empty target slots), decides the layout and
the attention mask, and implements:

* ``loss(src, tgt)``: training loss on target tokens and the argmax predictions behind it;
* ``predict(src, tgt_len)``: the model's answer at evaluation (greedy where it generates);
* ``positions_needed(src_len, tgt_len)``: how many positions one example occupies, so that an
  encoding with a bounded table can be refused before training.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch.nn.functional as F
from torch import Tensor, nn

from posbench.encodings import ENCODINGS, AttentionShape
from posbench.errors import ConfigError
from posbench.models.transformer import Transformer
from posbench.registry import Registry


class SequenceModel(nn.Module):
    name: str = ""
    description: str = ""
    #: True for causal (decoder-style) self-attention.
    causal: bool = False

    def __init__(
        self,
        vocab_size: int,
        encoding: dict,
        d_model: int = 64,
        layers: int = 2,
        heads: int = 4,
        ffn_mult: int = 4,
        dropout: float = 0.0,
    ):
        super().__init__()
        if d_model <= 0 or heads <= 0 or layers <= 0 or ffn_mult <= 0:
            raise ConfigError("model.d_model, model.heads, model.layers and model.ffn_mult must be positive")
        if d_model % heads:
            raise ConfigError(f"model.d_model={d_model} is not divisible by model.heads={heads}")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"model.dropout={dropout} must be in [0, 1)")
        self.vocab_size = vocab_size
        self.sep, self.blank = vocab_size, vocab_size + 1
        shape = AttentionShape(d_model=d_model, heads=heads, layers=layers, causal=self.causal)
        self.net = Transformer(
            vocab_size + 2, vocab_size, ENCODINGS.build(encoding, shape), d_model, layers, heads, ffn_mult, dropout
        )

    @property
    def encoding(self):
        return self.net.encoding

    @contextmanager
    def encoding_off(self):
        """Temporarily replace the encoding by NoPE (the trained model with its PE switched off)."""
        original = self.net.encoding
        self.net.encoding = ENCODINGS.get("none")(original.shape)
        try:
            yield self
        finally:
            self.net.encoding = original

    def loss(self, src: Tensor, tgt: Tensor) -> tuple[Tensor, Tensor]:
        logits = self.target_logits(src, tgt)
        loss = F.cross_entropy(logits.flatten(0, 1).float(), tgt.flatten())
        return loss, logits.argmax(-1)

    def target_logits(self, src: Tensor, tgt: Tensor) -> Tensor:
        """Logits ``[B, T, vocab]`` at the target positions (teacher-forced where relevant)."""
        raise NotImplementedError

    def predict(self, src: Tensor, tgt_len: int) -> Tensor:
        raise NotImplementedError

    def positions_needed(self, src_len: int, tgt_len: int) -> int:
        raise NotImplementedError


MODELS: Registry[SequenceModel] = Registry("model")

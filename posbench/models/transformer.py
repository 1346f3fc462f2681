"""The Transformer stack shared by the model families: tokens in, per-position logits out.

Position enters only through the encoding's hooks: ``positions`` once per forward, ``embed`` on
the input, ``rotate``/``bias``/``score``/``value`` inside every attention layer, ``between_blocks``
after each block.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from posbench.encodings import PositionalEncoding
from posbench.models.block import Block


class Transformer(nn.Module):
    def __init__(
        self,
        n_tokens: int,
        n_outputs: int,
        encoding: PositionalEncoding,
        d_model: int,
        layers: int,
        heads: int,
        ffn_mult: int,
        dropout: float,
    ):
        super().__init__()
        self.causal = encoding.shape.causal
        self.encoding = encoding
        self.embed = nn.Embedding(n_tokens, d_model)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(d_model, heads, ffn_mult, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, n_outputs)

    def forward(self, tokens: Tensor, pos: Tensor | None = None) -> Tensor:
        """``tokens [B, L]`` and integer positions ``[B or 1, L]`` (default 0..L-1) -> ``[B, L, n_outputs]``."""
        if pos is None:
            pos = torch.arange(tokens.shape[1], device=tokens.device)[None]
        pos = self.encoding.positions(pos)
        x = self.drop(self.encoding.embed(self.embed(tokens), pos))
        for layer, block in enumerate(self.blocks):
            x = block(x, self.encoding, pos, self.causal, layer)
            x = self.encoding.between_blocks(x, pos, layer)
        return self.head(self.norm(x))

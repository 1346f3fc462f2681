"""A pre-LN Transformer block (Xiong et al. 2020): x + Attn(LN(x)), then x + MLP(LN(x))."""

from __future__ import annotations

from torch import Tensor, nn

from posbench.encodings import PositionalEncoding
from posbench.models.attention import SelfAttention


class Block(nn.Module):
    def __init__(self, d_model: int, heads: int, ffn_mult: int, dropout: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.attn = SelfAttention(d_model, heads, dropout)
        self.norm2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(
            nn.Linear(d_model, ffn_mult * d_model),
            nn.GELU(),
            nn.Linear(ffn_mult * d_model, d_model),
            nn.Dropout(dropout),
        )

    def forward(self, x: Tensor, encoding: PositionalEncoding, pos: Tensor, causal: bool, layer: int) -> Tensor:
        x = x + self.attn(self.norm1(x), encoding, pos, causal, layer)
        return x + self.mlp(self.norm2(x))

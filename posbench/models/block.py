"""A pre-LN Transformer block (Xiong et al. 2020): x + Attn(LN(x)), [x + CrossAttn(LN(x), memory)],
then x + MLP(LN(x)) with MLP(x) = W2 GELU(ffn(W1 x)), where ``ffn`` is the encoding's hook (the
identity except for Mix-FFN). The cross-attention sublayer exists only in an encoder-decoder's decoder."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from posbench.encodings import PositionalEncoding
from posbench.models.attention import CrossAttention, SelfAttention


@dataclass
class Memory:
    """What a decoder block cross-attends to: the encoder output, the encoding that acts inside
    cross-attention (NoPE by default), and the positions it relates: target indices for the
    queries and source indices for the keys, both counted from 0 (never remapped by an encoding's
    ``positions`` hook)."""

    states: Tensor
    encoding: PositionalEncoding
    q_pos: Tensor
    k_pos: Tensor


class Block(nn.Module):
    def __init__(self, d_model: int, heads: int, ffn_mult: int, dropout: float, cross: bool = False):
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.attn = SelfAttention(d_model, heads, dropout)
        if cross:
            self.norm_cross = nn.LayerNorm(d_model)
            self.cross = CrossAttention(d_model, heads, dropout)
        self.norm2 = nn.LayerNorm(d_model)
        self.fc1 = nn.Linear(d_model, ffn_mult * d_model)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(ffn_mult * d_model, d_model)
        self.drop = nn.Dropout(dropout)

    def forward(
        self,
        x: Tensor,
        encoding: PositionalEncoding,
        pos: Tensor,
        causal: bool,
        layer: int,
        memory: Memory | None = None,
    ) -> Tensor:
        x = x + self.attn(self.norm1(x), encoding, pos, causal, layer)
        if memory is not None:
            x = x + self.cross(self.norm_cross(x), memory.states, memory.encoding, memory.q_pos, memory.k_pos, layer)
        hidden = encoding.ffn(self.fc1(self.norm2(x)), pos, layer)
        return x + self.drop(self.fc2(self.act(hidden)))

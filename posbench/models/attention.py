"""Multi-head self-attention in which the positional encoding acts only through its hooks.

Rotation and additive bias go through ``torch.nn.functional.scaled_dot_product_attention`` (the
bias, plus the causal mask where needed, as a float ``attn_mask``). Only an encoding with a
content-position ``score`` or ``value`` term takes the explicit path, which materialises the logits.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from posbench.encodings import PositionalEncoding


def causal_mask(q_len: int, k_len: int, device, dtype) -> Tensor:
    """Float mask ``[Lq, Lk]``: 0 where key j <= query i (aligned at the end), -inf after."""
    visible = torch.ones(q_len, k_len, dtype=torch.bool, device=device).tril(k_len - q_len)
    return torch.zeros(q_len, k_len, device=device, dtype=dtype).masked_fill(~visible, float("-inf"))


class SelfAttention(nn.Module):
    def __init__(self, d_model: int, heads: int, dropout: float = 0.0):
        super().__init__()
        self.heads = heads
        self.dropout = dropout
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=False)
        self.out = nn.Linear(d_model, d_model, bias=False)

    def forward(self, x: Tensor, encoding: PositionalEncoding, pos: Tensor, causal: bool, layer: int) -> Tensor:
        batch, length, d_model = x.shape
        q, k, v = self.qkv(x).view(batch, length, 3, self.heads, -1).permute(2, 0, 3, 1, 4).unbind(0)
        q, k = encoding.rotate(q, k, pos, pos)

        mask = encoding.bias(pos, pos, layer)
        if mask is not None:
            mask = mask.to(q.dtype)
            if causal:
                mask = mask + causal_mask(length, length, x.device, q.dtype)
        dropout = self.dropout if self.training else 0.0

        if encoding.explicit_attention:
            if mask is None and causal:
                mask = causal_mask(length, length, x.device, q.dtype)
            extra = encoding.score(q, k, pos, pos, layer)
            if extra is not None:
                mask = extra if mask is None else mask + extra
            weights = attention_weights(q, k, mask, dropout)
            y = weights @ v
            extra_values = encoding.value(weights, pos, pos, layer)
            if extra_values is not None:
                y = y + extra_values
        else:
            y = F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, dropout_p=dropout, is_causal=causal and mask is None
            )
        return self.out(y.transpose(1, 2).reshape(batch, length, d_model))


def attention_weights(q: Tensor, k: Tensor, extra_logits: Tensor | None, dropout: float) -> Tensor:
    """softmax(q k^T / sqrt(d) + extra_logits), with dropout: what SDPA computes fused."""
    logits = (q @ k.transpose(-2, -1)) * q.shape[-1] ** -0.5
    if extra_logits is not None:
        logits = logits + extra_logits
    weights = torch.softmax(logits.float(), dim=-1).to(q.dtype)
    return F.dropout(weights, dropout, training=dropout > 0)

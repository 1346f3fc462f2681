"""Multi-head attention in which the positional encoding acts only through its hooks.

Rotation and additive biases (``bias``, and ``data_bias`` computed from self-attention's input) go
through ``torch.nn.functional.scaled_dot_product_attention`` (their sum, plus the causal mask where
needed, as a float ``attn_mask``). Only an encoding with a content-position ``score`` or ``value``
term, or one that replaces the softmax (``normalize``), takes the explicit path, which materialises the logits;
``score`` is computed from the queries and keys as projected, before ``rotate`` (the content logits
``q . k`` use the rotated ones), so a relative term of a combination such as ``[rope, shaw]`` stays
relative.

``SelfAttention`` reads queries, keys and values from one sequence; ``CrossAttention`` (the
encoder-decoder family) reads queries from the decoder and keys/values from the encoder output.
Both call ``attend``, so an encoding behaves identically in either.

**Attention weights for analysis.** The fused path returns no weights. ``recording_attention(model)``
makes every attention module of a model keep the weights ``[B, heads, Lq, Lk]`` of each forward:
on the explicit path the weights it computes anyway, on the fused path the same softmax computed
once more from the very queries, keys and logit terms handed to SDPA (rotated q, k; bias, causal
mask), beside it. The output is still SDPA's, so recording changes no number; the recorded weights
reproduce it (``weights @ v``, plus an encoding's ``value`` term). They are the weights before
dropout on the fused path: record in eval mode (``posbench.analysis`` does).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from posbench.encodings import PositionalEncoding


def causal_mask(q_len: int, k_len: int, device, dtype) -> Tensor:
    """Float mask ``[Lq, Lk]``: 0 where key j <= query i (aligned at the end), -inf after."""
    visible = torch.ones(q_len, k_len, dtype=torch.bool, device=device).tril(k_len - q_len)
    return torch.zeros(q_len, k_len, device=device, dtype=dtype).masked_fill(~visible, float("-inf"))


def attend(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    encoding: PositionalEncoding,
    q_pos: Tensor,
    k_pos: Tensor,
    causal: bool,
    layer: int,
    dropout: float,
    record: list[Tensor] | None = None,
    x: Tensor | None = None,
) -> Tensor:
    """Attention output ``[B, heads, Lq, head_dim]`` with every attention-level hook applied.
    ``record``: a list the attention weights ``[B, heads, Lq, Lk]`` are appended to (detached),
    computed explicitly beside the fused path (see the module docstring); None: nothing is kept.
    ``x``: self-attention's input ``[B, L, d_model]``, what ``data_bias`` reads (None in cross-attention)."""
    q_len, k_len = q.shape[-2], k.shape[-2]
    explicit = encoding.explicit_attention
    extra = encoding.score(q, k, q_pos, k_pos, layer) if explicit else None  # from the unrotated q, k
    q, k = encoding.rotate(q, k, q_pos, k_pos, layer)
    mask = encoding.bias(q_pos, k_pos, layer)
    data = None if x is None else encoding.data_bias(x, q_pos, k_pos, layer)
    if data is not None:
        mask = data if mask is None else mask + data
    if mask is not None:
        mask = mask.to(q.dtype)
        if causal:
            mask = mask + causal_mask(q_len, k_len, q.device, q.dtype)

    if not explicit:
        if record is not None:  # the softmax SDPA computes fused, from the same inputs; its output stays SDPA's
            terms = causal_mask(q_len, k_len, q.device, q.dtype) if mask is None and causal else mask
            record.append(attention_weights(q, k, terms, 0.0).detach())
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout, is_causal=causal and mask is None)
    if mask is None and causal:
        mask = causal_mask(q_len, k_len, q.device, q.dtype)
    if extra is not None:
        mask = extra if mask is None else mask + extra
    weights = attention_weights(q, k, mask, dropout, lambda logits: encoding.normalize(logits, layer))
    if record is not None:
        record.append(weights.detach())
    y = weights @ v
    extra_values = encoding.value(weights, q_pos, k_pos, layer)
    return y if extra_values is None else y + extra_values


def attention_weights(
    q: Tensor, k: Tensor, extra_logits: Tensor | None, dropout: float, normalize: Callable[[Tensor], Tensor] | None = None
) -> Tensor:
    """normalize(q k^T / sqrt(d) + extra_logits), with dropout: what SDPA computes fused when
    ``normalize`` is the softmax (None); an encoding's ``normalize`` hook otherwise. The logits are
    normalised in float32."""
    logits = (q @ k.transpose(-2, -1)) * q.shape[-1] ** -0.5
    if extra_logits is not None:
        logits = logits + extra_logits
    logits = logits.float()
    weights = (torch.softmax(logits, dim=-1) if normalize is None else normalize(logits)).to(q.dtype)
    return F.dropout(weights, dropout, training=dropout > 0)


def split_heads(x: Tensor, heads: int) -> Tensor:
    """``[B, L, d_model]`` -> ``[B, heads, L, head_dim]``."""
    return x.view(x.shape[0], x.shape[1], heads, -1).transpose(1, 2)


def merge_heads(y: Tensor) -> Tensor:
    """``[B, heads, L, head_dim]`` -> ``[B, L, d_model]``."""
    return y.transpose(1, 2).flatten(2)


class SelfAttention(nn.Module):
    def __init__(self, d_model: int, heads: int, dropout: float = 0.0):
        super().__init__()
        self.heads = heads
        self.dropout = dropout
        #: A list while ``recording_attention`` is active: each forward appends its weights.
        self.record: list[Tensor] | None = None
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=False)
        self.out = nn.Linear(d_model, d_model, bias=False)

    def forward(self, x: Tensor, encoding: PositionalEncoding, pos: Tensor, causal: bool, layer: int) -> Tensor:
        batch, length, _ = x.shape
        q, k, v = self.qkv(x).view(batch, length, 3, self.heads, -1).permute(2, 0, 3, 1, 4).unbind(0)
        dropout = self.dropout if self.training else 0.0
        return self.out(merge_heads(attend(q, k, v, encoding, pos, pos, causal, layer, dropout, self.record, x)))


class CrossAttention(nn.Module):
    """Decoder queries attend to every encoder output (never causal). Query positions are the
    target positions and key positions the source positions, both counted from 0; a relative
    cross-attention encoding therefore sees ``i - j`` between target index i and source index j."""

    def __init__(self, d_model: int, heads: int, dropout: float = 0.0):
        super().__init__()
        self.heads = heads
        self.dropout = dropout
        #: A list while ``recording_attention`` is active: each forward appends its weights.
        self.record: list[Tensor] | None = None
        self.q = nn.Linear(d_model, d_model, bias=False)
        self.kv = nn.Linear(d_model, 2 * d_model, bias=False)
        self.out = nn.Linear(d_model, d_model, bias=False)

    def forward(
        self, x: Tensor, memory: Tensor, encoding: PositionalEncoding, q_pos: Tensor, k_pos: Tensor, layer: int
    ) -> Tensor:
        q = split_heads(self.q(x), self.heads)
        k, v = (split_heads(part, self.heads) for part in self.kv(memory).chunk(2, dim=-1))
        dropout = self.dropout if self.training else 0.0
        return self.out(merge_heads(attend(q, k, v, encoding, q_pos, k_pos, False, layer, dropout, self.record)))


@contextmanager
def recording_attention(model: nn.Module) -> Iterator[dict[str, list[Tensor]]]:
    """Within the block, every ``SelfAttention`` and ``CrossAttention`` of ``model`` keeps the
    attention weights ``[B, heads, Lq, Lk]`` of each of its forwards (detached, in call order).
    Yields ``{module name: [weights, ...]}`` (``net.blocks.0.attn``, ``net.blocks.0.cross``...),
    filled as the model runs; the model's outputs are unchanged (see the module docstring)."""
    modules = {name: module for name, module in model.named_modules() if isinstance(module, (SelfAttention, CrossAttention))}
    for module in modules.values():
        module.record = []
    try:
        yield {name: module.record for name, module in modules.items()}
    finally:
        for module in modules.values():
            module.record = None

"""NoPE: no positional information at all (Kazemnejad et al. 2023, "The Impact of Positional
Encoding on Length Generalization in Transformers"). Every hook keeps the base class's identity.
A bidirectional model with NoPE is permutation-equivariant; a causal one still sees order through
its mask.

Length-dependent softmax temperature (option ``logn_scale``, default null = off): Scalable-Softmax,
SSMax (Nakanishi 2025, "Scalable-Softmax Is Superior for Attention", arXiv:2501.19399, its
definition of SSMax): the softmax over a vector ``z`` of size ``n`` becomes

    SSMax(z)_j = n^(s z_j) / sum_t n^(s z_t) = exp((s log n) z_j) / sum_t exp((s log n) z_t)

i.e. the logits are multiplied by ``s log n`` before the softmax, so that the largest weight does
not fade as the number of keys grows. ``n`` is the number of keys the query attends to: ``i + 1``
for query ``i`` under a causal mask (keys ``0 .. i``), the key length without one (every query sees
every key). ``s = logn_scale`` is one fixed number for every layer and head; the paper learns one
``s`` per layer and head (not implemented here). The older "log-n scaling" (Chiang & Cholak 2022,
"Overcoming a Theoretical Limitation of Self-Attention": logits times ``log n``; Su 2021's
entropy-invariant ``log_L n`` with ``L`` the training length) is the same family: ``logn_scale = 1``
gives the former, ``logn_scale = 1 / log L`` the latter.

Implementation: the scaling multiplies the queries in the ``rotate`` hook (query ``i``'s row by
``s log n_i``), so attention keeps the fused ``scaled_dot_product_attention`` path; the content
logits ``q . k / sqrt(d)`` are scaled exactly as SSMax's ``z``. In ``encoding=combo`` other parts'
``bias``/``score`` terms are added after the scaling (unscaled), where SSMax would scale the whole
logit vector; alone, ``none`` has no other term and this is SSMax exactly. ``n = 1`` (the first
query of a causal model) gives ``log 1 = 0``: its one logit is 0 and its one weight 1, as SSMax's.

``n`` counts tokens, never positions: shifting every position changes nothing (shift-invariant).
With ``logn_scale`` set, "PE off" (``without_position``) keeps the scaling: it is a change of the
softmax's temperature with the number of keys, which a NoPE model without it would not have, not a
positional code; what the option adds is measured against the no-PE twin (plain NoPE) instead.
A run with ``logn_scale`` set is therefore not its own twin (``posbench.config.is_pe_free``) and is
labelled ``none(logn_scale=...)``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from posbench.encodings.base import ENCODINGS, AttentionShape, PositionalEncoding
from posbench.schema import PositiveFloat


@ENCODINGS.register("none")
class NoPE(PositionalEncoding):
    description = "no positional encoding (NoPE, Kazemnejad et al. 2023); option logn_scale: SSMax log-n softmax scaling (Nakanishi 2025)"
    family = "none"
    shift_invariant = True

    def __init__(self, shape: AttentionShape, logn_scale: PositiveFloat | None = None):
        """``logn_scale``: SSMax's ``s`` (logits times ``s log n``); None: plain NoPE."""
        super().__init__(shape)
        self.logn_scale = None if logn_scale is None else float(logn_scale)

    @property
    def rotates(self) -> bool:
        """Only with ``logn_scale`` set does ``rotate`` change the queries."""
        return self.logn_scale is not None

    def without_position(self) -> PositionalEncoding:
        """Itself: NoPE has no position to switch off, and the log-n scaling is kept (module docstring)."""
        return type(self)(self.shape, logn_scale=self.logn_scale)

    def keys_seen(self, q_len: int, k_len: int, device=None) -> Tensor:
        """``[Lq, 1]``: the number of keys each query attends to (``i + 1 + k_len - q_len`` under a
        causal mask, as its lower-triangular mask aligned to the last key; else ``k_len``)."""
        if self.shape.causal:
            counts = torch.arange(q_len, device=device, dtype=torch.float32) + 1 + (k_len - q_len)
        else:
            counts = torch.full((q_len,), float(k_len), device=device)
        return counts[:, None]

    def rotate(self, q: Tensor, k: Tensor, q_pos: Tensor, k_pos: Tensor, layer: int = 0) -> tuple[Tensor, Tensor]:
        if self.logn_scale is None:
            return q, k
        factor = self.logn_scale * self.keys_seen(q.shape[-2], k.shape[-2], q.device).log()  # [Lq, 1]
        return (q.float() * factor).to(q.dtype), k

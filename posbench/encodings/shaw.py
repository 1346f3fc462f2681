"""Relative position representations (Shaw et al. 2018, "Self-Attention with Relative Position
Representations", §3, eqs. 3-5).

Each pair (query i, key j) gets learned vectors of size ``head_dim`` indexed by the clipped
relative position ``j - i`` (§3.2):

    a^K_ij = w^K[clip(j - i, k)],  a^V_ij = w^V[clip(j - i, k)],  clip(x, k) = max(-k, min(k, x))

    e_ij = q_i . (k_j + a^K_ij) / sqrt(d)                                   (eq. 5)
    z_i  = sum_j alpha_ij (v_j + a^V_ij),  alpha = softmax_j(e_ij)          (eq. 3)

The content part of both is computed by attention; this encoding supplies the rest through the
hooks: ``score`` returns ``q_i . a^K_ij / sqrt(d)`` (the hook's terms are added to the already
scaled content logits, so the same ``1/sqrt(d)`` is applied here to match eq. 5) and ``value``
returns ``sum_j alpha_ij a^V_ij``.

Conventions (and why):

* the tables are shared across heads, as in the paper (§3.3), and each layer has its own
  ``w^K``, ``w^V``, as in the paper's tensor2tensor implementation, which creates them inside
  each attention layer;
* ``clip`` defaults to k = 16, the paper's clipping distance for its base model (its ablation of
  k finds little change for k >= 2); ``values`` defaults to true, as the paper's main results use
  both a^K and a^V (its ablation finds a^K alone nearly as good);
* initialisation is Xavier-uniform (the paper does not specify one).

Efficient form (§3.3, without any ``[Lq, Lk, d]`` tensor): ``q_i . w^K_r`` is computed for the
``2k + 1`` table rows r and gathered by clipped distance; for values, the attention weights are
summed into their distance buckets (scatter-add) and the ``[.., 2k + 1]`` bucket weights are
multiplied by ``w^V``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from posbench.encodings.base import ENCODINGS, AttentionShape, PositionalEncoding, relative_distance
from posbench.schema import NonNegativeInt


@ENCODINGS.register("shaw")
class Shaw(PositionalEncoding):
    description = "learned clipped relative key/value embeddings (Shaw et al. 2018, eqs. 3-5)"
    family = "relative"
    shift_invariant = True

    def __init__(self, shape: AttentionShape, clip: NonNegativeInt = 16, values: bool = True):
        super().__init__(shape)
        self.clip = clip
        rows = 2 * self.clip + 1
        self.w_key = nn.Parameter(torch.empty(shape.layers, rows, shape.head_dim))
        self.register_parameter("w_value", nn.Parameter(torch.empty_like(self.w_key)) if values else None)
        for table in (self.w_key, self.w_value):
            if table is not None:
                for layer in table.data:
                    nn.init.xavier_uniform_(layer)

    def bucket(self, q_pos: Tensor, k_pos: Tensor) -> Tensor:
        """Table row ``clip(j - i, k) + k`` of every (query, key) pair: ``[B or 1, 1, Lq, Lk]``."""
        relative = -relative_distance(q_pos, k_pos)  # j - i
        return (relative.clamp(-self.clip, self.clip) + self.clip)[:, None]

    def score(self, q: Tensor, k: Tensor, q_pos: Tensor, k_pos: Tensor, layer: int) -> Tensor:
        per_row = q @ self.w_key[layer].to(q.dtype).T  # q_i . w^K_r: [B, heads, Lq, 2k+1]
        index = self.bucket(q_pos, k_pos).expand(*per_row.shape[:3], k_pos.shape[-1])
        return per_row.gather(-1, index) * q.shape[-1] ** -0.5

    def value(self, weights: Tensor, q_pos: Tensor, k_pos: Tensor, layer: int) -> Tensor | None:
        if self.w_value is None:
            return None
        index = self.bucket(q_pos, k_pos).expand_as(weights)
        per_row = weights.new_zeros(*weights.shape[:3], self.w_value.shape[1])
        per_row.scatter_add_(-1, index, weights)  # sum of alpha_ij over the j in each distance bucket
        return per_row @ self.w_value[layer].to(weights.dtype)

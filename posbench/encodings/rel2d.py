"""Content-dependent 2D relative positions: Shaw et al.'s key term (2018, "Self-Attention with
Relative Position Representations", eq. 5) with the relative position split into a row and a
column offset, as in the relative self-attention of BoTNet (Srinivas et al. 2021, "Bottleneck
Transformers for Visual Recognition", Fig. 4) and Attention Augmented Convolutional Networks
(Bello et al. 2019), and the "2D relative" encoding of the s-chh/2D-Positional-Encoding-Vision-
Transformer CIFAR study:

    e_ij = q_i . (k_j + r^row[clip(r_j - r_i)] + r^col[clip(c_j - c_i)]) / sqrt(d_head)

    clip(x) = max(-k, min(k, x)),  k = ``max_offset``

for patches i at (r_i, c_i) and j at (r_j, c_j); offsets are key minus query, as in Shaw et al.
Attention computes the content part ``q_i . k_j / sqrt(d_head)``; this encoding's ``score`` hook
returns the rest, ``q_i . (r^row + r^col) / sqrt(d_head)`` (the hook's terms are added to the
already scaled logits, so the same ``1/sqrt(d_head)`` is applied here, as ``shaw`` does).

Conventions:

* the row and column tables (``2k + 1`` vectors of size ``head_dim`` each) are summed, as in
  BoTNet and Bello et al. (s-chh concatenates two half-width tables, the special case in which
  the row and column vectors occupy disjoint halves); they are shared by the heads and each layer
  has its own, like ``shaw``; Xavier-uniform initialisation, as ``shaw``;
* ``max_offset`` (k) defaults to ``G - 1`` for the ``G x G`` training grid: every offset seen in
  training has its own vector; on a larger grid offsets beyond k share the vector of +-k, so the
  encoding extends to any grid without resampling;
* class token (``shape.prefix`` leading tokens, coordinates ``(-1, -1)``): no relative term, the
  score is zero for every pair it is part of (s-chh gives it a learned vector of its own instead;
  posbench keeps this encoding purely relative).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from posbench.encodings.base import ENCODINGS, AttentionShape, PositionalEncoding, grid_pairs
from posbench.schema import NonNegativeInt


@ENCODINGS.register("rel2d")
class Relative2D(PositionalEncoding):
    description = "learned clipped row + column relative key embeddings, q . (r_dr + r_dc) (Shaw 2018 eq. 5 in 2D, BoTNet)"
    family = "relative"
    axes = 2
    shift_invariant = True

    def __init__(self, shape: AttentionShape, max_offset: NonNegativeInt | None = None):
        """``max_offset``: clipping distance k per axis; null: the training grid's largest offset, G - 1."""
        super().__init__(shape)
        self.max_offset = shape.grid - 1 if max_offset is None else max_offset
        rows = 2 * self.max_offset + 1
        self.w_row = nn.Parameter(torch.empty(shape.layers, rows, shape.head_dim))
        self.w_col = nn.Parameter(torch.empty(shape.layers, rows, shape.head_dim))
        for table in (self.w_row, self.w_col):
            for layer in table.data:
                nn.init.xavier_uniform_(layer)

    def bucket(self, q_pos: Tensor, k_pos: Tensor) -> Tensor:
        """Table rows ``clip(key - query) + k`` per axis: ``[B or 1, Lq, Lk, 2]`` (row, col)."""
        relative = k_pos[..., None, :, :] - q_pos[..., :, None, :]
        return relative.clamp(-self.max_offset, self.max_offset) + self.max_offset

    def score(self, q: Tensor, k: Tensor, q_pos: Tensor, k_pos: Tensor, layer: int) -> Tensor:
        bucket = self.bucket(q_pos, k_pos)
        size = (*q.shape[:3], k_pos.shape[-2])
        total = q.new_zeros(size)
        for axis, table in enumerate((self.w_row, self.w_col)):
            per_row = q @ table[layer].to(q.dtype).T  # q_i . r_o for every offset o: [B, heads, Lq, 2k+1]
            total = total + per_row.gather(-1, bucket[..., axis][:, None].expand(size))
        prefix = self.shape.prefix
        if prefix:
            total = total * grid_pairs(size[2], size[3], prefix, q.device).to(q.dtype)
        return total * q.shape[-1] ** -0.5

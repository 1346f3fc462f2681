"""TUPE-A, untied positional encoding (Ke et al. 2021, "Rethinking Positional Encoding in Language
Pre-training", §3.1, eq. 7):

    alpha_ij = (x_i W^Q)(x_j W^K)^T / sqrt(2d)  +  (p_i U^Q)(p_j U^K)^T / sqrt(2d)

Word and position correlations are computed separately ("untied") with their own projections, and
no position is added to the input. ``p`` is a learned absolute table (``max_len`` rows, so runs
needing more positions are refused before training), ``U^Q``, ``U^K`` are ``d_model x d_model``
projections split into heads like ``W^Q``, ``W^K`` (each head has its own), shared by all layers
as in the paper, so the position term is the same in every layer; ``d`` is the head dimension
(the reference code scales by ``(2 * head_dim)^-1/2``).

Both terms run on the fused attention path:

* the position term depends on positions only, so it is the ``bias`` hook;
* the content term's ``1/sqrt(2d)`` instead of attention's ``1/sqrt(d)``: the ``rotate`` hook ("a
  transformation of queries and keys") multiplies the queries by ``1/sqrt(2)``, so attention's
  ``q . k / sqrt(d)`` becomes ``q . k / sqrt(2d)``.

"PE off" (``without_position``, used by ``SequenceModel.encoding_off``) drops the position term and
keeps the content term of eq. 7 as it is, ``q . k / sqrt(2d)``: replacing TUPE by NoPE would also
multiply the content logits by ``sqrt(2)``, a change of temperature rather than of position.

Choices (and why): eq. 7 as written, with no bias in ``U^Q``, ``U^K`` and no LayerNorm on ``p``
(the reference code adds both); ``p`` is initialised N(0, 1), the scale of posbench's token
embeddings (the reference's LayerNorm brings ``p`` to that scale). The paper's untying of the
[CLS] token (eq. 8) is skipped: posbench's tasks have no [CLS] token. TUPE-R (TUPE-A plus a T5
relative bias) is not this encoding.
"""

from __future__ import annotations

import math

from torch import Tensor, nn

from posbench.encodings.base import ENCODINGS, AttentionShape, PositionalEncoding
from posbench.schema import PositiveInt


class UntiedContent(PositionalEncoding):
    """TUPE's content term alone, ``(x_i W^Q)(x_j W^K)^T / sqrt(2d)`` (eq. 7 without the position
    term): TUPE with its position switched off. Not a registered encoding."""

    name = "tupe (position off)"
    description = "TUPE-A's content term only: content logits scaled by 1/sqrt(2d) (Ke et al. 2021, eq. 7)"

    def rotate(self, q: Tensor, k: Tensor, q_pos: Tensor, k_pos: Tensor, layer: int = 0) -> tuple[Tensor, Tensor]:
        return q * math.sqrt(0.5), k


@ENCODINGS.register("tupe")
class TUPE(UntiedContent):
    description = "untied absolute position correlation, no input PE (Ke et al. 2021, TUPE-A eq. 7)"
    family = "absolute"
    shift_invariant = False

    def __init__(self, shape: AttentionShape, max_len: PositiveInt = 256):
        super().__init__(shape)
        self.table = nn.Embedding(max_len, shape.d_model)  # N(0, 1) initialisation
        self.u_q = nn.Linear(shape.d_model, shape.d_model, bias=False)
        self.u_k = nn.Linear(shape.d_model, shape.d_model, bias=False)

    def max_positions(self) -> int:
        return self.table.num_embeddings

    def without_position(self) -> UntiedContent:
        return UntiedContent(self.shape)

    def bias(self, q_pos: Tensor, k_pos: Tensor, layer: int) -> Tensor:
        heads = self.shape.heads
        p_q = self.u_q(self.table(q_pos)).unflatten(-1, (heads, -1)).transpose(1, 2)  # [B or 1, heads, Lq, d]
        p_k = self.u_k(self.table(k_pos)).unflatten(-1, (heads, -1)).transpose(1, 2)  # [B or 1, heads, Lk, d]
        return (p_q @ p_k.transpose(-2, -1)) * (2 * self.shape.head_dim) ** -0.5

"""Contextual position encoding, CoPE (Golovneva et al. 2024, "Contextual Position Encoding:
Learning to Count What's Important", §3 eqs. 3-6).

Positions are counted, not indexed: query i decides with a gate which keys count, and the
position of key j relative to i is the number of counted keys between j and i:

    g_it  = sigmoid(q_i . k_t / sqrt(d))                          (eq. 3)
    p_ij  = min(sum_{t=j}^{i} g_it, npos_max)                     (eq. 4, clipped at p_max)
    e[p]  = (p - floor p) e[ceil p] + (1 - p + floor p) e[floor p]  (eq. 5)
    a_ij  = softmax_j((q_i . k_j + q_i . e[p_ij]) / sqrt(d))      (eq. 6)

with ``e[0] .. e[npos_max]`` learned vectors of size ``head_dim`` (``npos_max + 1`` rows: p = 0 is
reachable once clipped gates vanish), one table per layer shared by the heads of that layer, zero
at initialisation, as in the authors' reference code (facebookresearch/RAM, projects/cope).
The ``score`` hook returns ``q_i . e[p_ij] / sqrt(d)``, which the attention adds to its already
scaled ``q_i . k_j / sqrt(d)``. Only the positions are fractional, so the paper's efficient form is
used: ``q_i . e[n]`` for every integer n once, then the *logits* are interpolated (eq. 5 is linear
in e, so this equals interpolating the vectors).

Conventions (documented choices):

* Scaling: eq. 3 writes the raw product ``sigmoid(q . k)``; both the paper's appendix code and the
  reference code compute the gates from the ``1/sqrt(d)``-scaled attention logits, and posbench
  follows the code. Eq. 6 is taken with the usual ``1/sqrt(d)`` over the whole ``q . (k + e)`` (the
  reference code's default); the appendix code and x-transformers add an unscaled ``q . e``, the
  same model with the table rescaled by ``sqrt(d)``.
* ``npos_max`` is the paper's p_max, the largest position (the appendix code's ``npos_max``
  argument counts table rows, i.e. equals this one plus 1). The reference code's default is the
  block size (clipping inactive in distribution); posbench's default of 64 exceeds every default
  task length, so clipping only acts on longer test sequences; lower it for the paper's small p_max.
* Causal only: the count runs over the keys visible to a causal query (j <= i), and the paper
  defines and evaluates CoPE for decoders only. A bidirectional version would need a choice the
  paper does not make (how to count, and tell apart, keys to the right), so it is refused.

Soft one-hot lookup (option ``soft_onehot``, default false; x-transformers' variant, ``CoPE(...,
soft_onehot=True)``, not in Golovneva et al.): instead of eq. 5's interpolation between the two
neighbouring rows, every row n = 0 .. npos_max is weighted by a softmax over the table of the
negative distance to the (clipped) contextual position, at temperature ``temperature`` (T):

    w_ij[n]  = softmax_n(-|p_ij - n| / T)
    score_ij = sum_n w_ij[n] q_i . e[n] / sqrt(d)

T -> 0 makes the weights one-hot at the nearest integer (a rounding lookup, q_i . e[round(p_ij)]:
not eq. 5's interpolation, which it equals only at integer p_ij; at a half-integer the two
neighbours share the weight); a large T averages the whole table. The default T = 0.05 is
x-transformers'. x-transformers materialises the weights ``[B, heads, Lq, Lk, npos_max + 1]``;
posbench computes the same sum without them (``soft_onehot_lookup``): with ``f = floor(p)`` and
``r = exp(-1/T)``, the rows below p weigh ``exp(-(p - f)/T) r^(f - n)`` and those above
``exp(-(f + 1 - p)/T) r^(n - f - 1)``, so the sum is two exponentially decaying running sums over
the table (one ``[npos_max + 1]^2`` matrix product each, per query) read at f and f + 1, and
normalised by the same sums of ones: the table's size stays out of the ``[Lq, Lk]`` work (about
20x faster than the materialised weights at length 64).

CoPE never reads the integer positions: shifting them all changes nothing (shift-invariant), while
the counts still give the model order information through the causal prefix.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from posbench.encodings.base import ENCODINGS, AttentionShape, PositionalEncoding
from posbench.schema import PositiveFloat, PositiveInt


@ENCODINGS.register("cope")
class CoPE(PositionalEncoding):
    description = "contextual positions: sigmoid-gated counts of keys index a learned table (Golovneva et al. 2024)"
    family = "relative"
    shift_invariant = True
    supports_bidirectional = False

    def __init__(
        self,
        shape: AttentionShape,
        npos_max: PositiveInt = 64,
        soft_onehot: bool = False,
        temperature: PositiveFloat = 0.05,
    ):
        """``temperature``: of the soft one-hot weights (used only with ``soft_onehot``)."""
        super().__init__(shape)
        if not soft_onehot:
            self.refuse_unread("temperature", temperature, "soft_onehot=true")
        self.npos_max = npos_max
        self.soft_onehot = bool(soft_onehot)
        self.temperature = float(temperature)
        # e[layer, n] for n = 0 .. npos_max, zero at initialisation (reference code)
        self.table = nn.Parameter(torch.zeros(shape.layers, self.npos_max + 1, shape.head_dim))

    def contextual_positions(self, q: Tensor, k: Tensor) -> Tensor:
        """``p_ij`` (eq. 4, clipped), ``[B, heads, Lq, Lk]``; 0 for the masked keys j > i."""
        gates = torch.sigmoid((q @ k.transpose(-2, -1)).float() * q.shape[-1] ** -0.5)
        q_len, k_len = gates.shape[-2:]
        visible = torch.ones(q_len, k_len, dtype=torch.bool, device=q.device).tril(k_len - q_len)
        gates = gates.masked_fill(~visible, 0.0)
        # sum over t = j .. i: a cumulative sum from the right (future gates are zero)
        return gates.flip(-1).cumsum(-1).flip(-1).clamp(max=self.npos_max)

    def score(self, q: Tensor, k: Tensor, q_pos: Tensor, k_pos: Tensor, layer: int) -> Tensor:
        pos = self.contextual_positions(q, k)
        at_integers = q.float() @ self.table[layer].float().T  # q_i . e[n], [B, heads, Lq, npos_max + 1]
        if self.soft_onehot:
            return (soft_onehot_lookup(at_integers, pos, self.temperature) * q.shape[-1] ** -0.5).to(q.dtype)
        floor = pos.floor()
        w = pos - floor  # differentiable; floor/ceil indices are not
        lower = at_integers.gather(-1, floor.long())
        upper = at_integers.gather(-1, pos.ceil().long())
        return ((w * upper + (1 - w) * lower) * q.shape[-1] ** -0.5).to(q.dtype)


def soft_onehot_lookup(at_integers: Tensor, pos: Tensor, temperature: float) -> Tensor:
    """``sum_n softmax_n(-|p_ij - n| / T) s_in`` for ``s = at_integers [B, heads, Lq, N]`` and
    positions ``pos [B, heads, Lq, Lk]`` in ``[0, N - 1]``, without the ``[.., Lk, N]`` weights
    (module docstring): running sums decaying by ``r = exp(-1/T)`` per row, to the left (rows
    ``n <= f``, read at ``f = floor(p)``) and to the right (rows ``n >= f + 1``), each side weighted
    by its distance to p relative to the nearer side's, so that nothing under- or overflows."""
    rows = at_integers.shape[-1]
    index = torch.arange(rows, device=pos.device, dtype=torch.float32)
    gap = index[None, :] - index[:, None]  # [n, g]: g - n
    decay = torch.exp(-gap.abs() / temperature)
    left, right = decay * (gap >= 0), decay * (gap <= 0)  # row n's weight in the sum ending (starting) at g
    scores = at_integers.float()
    sums_left = scores @ left  # [B, heads, Lq, N]: sum_{n <= g} r^(g - n) s_n
    sums_right = torch.cat((scores @ right, scores.new_zeros(*scores.shape[:-1], 1)), dim=-1)  # ... n >= g; 0 at g = N
    norms_left, norms_right = left.sum(0), torch.cat((right.sum(0), right.new_zeros(1)))
    floor = pos.floor()
    below, above = -(pos - floor) / temperature, -(floor + 1 - pos) / temperature
    nearer = torch.maximum(below, above)
    weight_below, weight_above = (below - nearer).exp(), (above - nearer).exp()
    f = floor.long()
    total = weight_below * sums_left.gather(-1, f) + weight_above * sums_right.gather(-1, f + 1)
    return total / (weight_below * norms_left[f] + weight_above * norms_right[f + 1])

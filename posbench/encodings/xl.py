"""Transformer-XL relative attention (Dai et al. 2019, "Transformer-XL: Attentive Language Models
Beyond a Fixed-Length Context", §3.3), the four terms of the relative logit:

    A_ij = q_i . k_j  +  q_i . W_R R_{i-j}  +  u . k_j  +  v . W_R R_{i-j}
           (a)           (b)                   (c)         (d)

all scaled by ``1/sqrt(head_dim)`` as the reference implementation does (``AC + BD`` then
``* scale``). Term (a) is the content logit computed by attention; ``score`` returns
``[(q_i + v) . W_R R_{i-j} + u . k_j] / sqrt(head_dim)``, i.e. (b) + (c) + (d) at the same scale.

* ``R_{i-j}`` is the fixed sinusoid of the signed distance ``i - j`` (query minus key) with the
  model dimension, and ``W_R`` (one ``d_model x d_model`` matrix per layer, no bias, as the
  reference ``r_net``; PyTorch's default ``nn.Linear`` initialisation, like posbench's own
  attention projections) projects it to every head's ``head_dim`` features.
* ``u`` (content bias) and ``v`` (position bias), one ``head_dim`` vector per head, are shared
  across layers, as in the reference PyTorch implementation's default (``untie_r=False``);
  initialised N(0, 0.02^2) as there.
* the sinusoid uses posbench's interleaved (sin, cos) layout (``sinusoid_table``) where the
  reference concatenates [sin..., cos...]; the two differ by a fixed permutation of R's features,
  which the learned ``W_R`` absorbs.
* bidirectional attention: the paper is causal (only ``i - j >= 0``), but the sinusoid of a
  negative distance is well defined (sin is odd, cos even), so keys to the left and to the right
  of a query get distinct codes; posbench uses the same formula for both signs.

Efficient form: ``W_R R_d`` is computed once per distinct distance d (2L - 1 of them for
contiguous positions), then ``(q_i + v) . W_R R_d`` for every distinct d, and gathered by each
pair's distance (the gather replaces the paper's "relative shift" trick and also serves
arbitrary, e.g. randomized, positions); no ``[Lq, Lk, d]`` tensor is materialised.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from posbench.encodings.base import ENCODINGS, AttentionShape, PositionalEncoding, relative_distance
from posbench.encodings.sinusoidal import sinusoid_table
from posbench.errors import ConfigError
from posbench.schema import FrequencyBase


@ENCODINGS.register("xl")
class TransformerXL(PositionalEncoding):
    description = "sinusoidal relative keys + content/position biases u, v (Dai et al. 2019, Transformer-XL §3.3)"
    family = "relative"
    shift_invariant = True
    fractional = True

    def __init__(self, shape: AttentionShape, base: FrequencyBase = 10000.0):
        super().__init__(shape)
        if shape.d_model % 2:
            raise ConfigError(f"encoding=xl needs an even model.d_model, got {shape.d_model}")
        self.base = float(base)
        self.w_r = nn.ModuleList(nn.Linear(shape.d_model, shape.d_model, bias=False) for _ in range(shape.layers))
        self.u = nn.Parameter(torch.empty(shape.heads, shape.head_dim).normal_(std=0.02))
        self.v = nn.Parameter(torch.empty(shape.heads, shape.head_dim).normal_(std=0.02))

    def score(self, q: Tensor, k: Tensor, q_pos: Tensor, k_pos: Tensor, layer: int) -> Tensor:
        distances, index = relative_distance(q_pos, k_pos).unique(return_inverse=True)  # [D], [B or 1, Lq, Lk]
        r = sinusoid_table(distances, self.shape.d_model, self.base).to(q.dtype)  # R_d: [D, d_model]
        w_r_r = self.w_r[layer](r).view(-1, *self.v.shape)  # W_R R_d per head: [D, heads, head_dim]
        query = q + self.v[:, None].to(q.dtype)  # (b) + (d): (q_i + v) . W_R R_(i-j)
        if len(distances) <= k.shape[2]:  # integer positions: D = Lq + Lk - 1, one product per distance
            per_distance = torch.einsum("bhid,nhd->bhin", query, w_r_r)
            position = per_distance.gather(-1, index[:, None].expand(*per_distance.shape[:3], k.shape[2]))
        else:  # more distances than keys (randomized positions: up to Lq x Lk): one product per pair
            position = torch.einsum("bhid,bijhd->bhij", query, w_r_r[index])
        content_bias = (k @ self.u[..., None].to(k.dtype)).transpose(-2, -1)  # (c) u . k_j: [B, heads, 1, Lk]
        return (position + content_bias) * q.shape[-1] ** -0.5

"""FIRE, functional interpolation for relative positions (Li et al. 2023, "Functional Interpolation
for Relative Positions Improves Long Context Transformers", ICLR 2024):

    logits[h, i, j] += f_theta( psi(i - j) / psi(max(L, i)) )[h],      psi(x) = log(c x + 1)

for a causal query ``i`` and key ``j <= i``: ``f_theta`` is an MLP from one scalar to one value per
head (one hidden layer of width ``hidden`` = 32 with ReLU, as in the paper's reference code), ``c``
a learned log-transform scale and ``L`` a learned threshold below which the normaliser stops
shrinking (short sequences are not stretched over the whole input range). Normalising by the
*query* position makes the bias progressively interpolate as the context grows; it also makes FIRE
**not shift-invariant**: moving every position by k changes ``psi(max(L, i))`` once ``i > L``.

Parameters and initialisation follow the paper's reference code (its appendix pseudo-code): c
starts at ``init_c`` = 0.1 and enters as ``|c|``, with ``eps`` = 1e-6 added to the normaliser;
the MLP has PyTorch's default Linear initialisation. One difference, documented: the reference
code writes the threshold as ``L = |m * 512|`` with a learned multiplier ``m`` (init 1) and a
frozen 512; posbench learns ``L = exp(l)`` with ``l`` initialised to ``log(init_L)`` = log 512. Both
start at 512 and take the same first step (``dL/dm = 512 = dL/dl`` at initialisation, so SGD and
Adam move L alike), but ``exp`` keeps L positive and smooth everywhere without the ``|.|`` kink and
without a frozen constant. Each layer has its own FIRE (MLP, c and L), as in the paper's main
experiments; ``shared: true`` uses one for all layers (the paper's layerwise-shared variant, FIRE-S).

Bidirectional attention (posbench's convention, documented): the paper defines FIRE for causal
attention only. posbench extends psi to an odd function of the signed distance,
``sign(i - j) * log(c |i - j| + 1)``, with the same normaliser, so keys to the right of the query
feed the MLP negative inputs and a head can tell left from right. On every causal (``j <= i``) pair
this is exactly the paper's formula.

The input depends on the query position as well as on ``i - j``, so the MLP is evaluated on the
full ``Lq x Lk`` matrix rather than on the distinct distances only.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from posbench.encodings.base import ENCODINGS, AttentionShape, PositionalEncoding, relative_distance
from posbench.schema import PositiveFloat, PositiveInt

#: Added to the normaliser, as in the reference code.
EPS = 1e-6


@ENCODINGS.register("fire")
class FIRE(PositionalEncoding):
    description = "learned MLP of log distance over log query position, per head (Li et al. 2023, FIRE)"
    family = "bias"
    shift_invariant = False
    fractional = True

    def __init__(
        self,
        shape: AttentionShape,
        hidden: PositiveInt = 32,
        init_c: PositiveFloat = 0.1,
        init_L: PositiveFloat = 512.0,
        shared: bool = False,
    ):
        super().__init__(shape)
        self.shared = bool(shared)
        copies = 1 if self.shared else shape.layers
        self.mlps = nn.ModuleList(
            nn.Sequential(nn.Linear(1, hidden), nn.ReLU(), nn.Linear(hidden, shape.heads)) for _ in range(copies)
        )
        self.c = nn.Parameter(torch.full((copies,), float(init_c)))
        self.log_threshold = nn.Parameter(torch.full((copies,), math.log(init_L)))

    def normalised_distance(self, q_pos: Tensor, k_pos: Tensor, layer: int) -> Tensor:
        """The MLP input ``sign(i - j) psi(|i - j|) / psi(max(L, i))``, shape ``[B or 1, Lq, Lk]``."""
        index = 0 if self.shared else layer
        c, threshold = self.c[index].abs(), self.log_threshold[index].exp()
        rel = relative_distance(q_pos, k_pos).to(torch.float32)
        normaliser = torch.log1p(c * torch.maximum(q_pos.to(torch.float32), threshold)) + EPS  # [B, Lq]
        return rel.sign() * torch.log1p(c * rel.abs()) / normaliser[..., None]

    def bias(self, q_pos: Tensor, k_pos: Tensor, layer: int) -> Tensor:
        x = self.normalised_distance(q_pos, k_pos, layer)
        mlp = self.mlps[0 if self.shared else layer]
        return mlp(x[..., None]).permute(0, 3, 1, 2)  # [B, heads, Lq, Lk]

"""KERPLE, kernelized relative positional embedding (Chi et al. 2022, "KERPLE: Kernelized Relative
Positional Embedding for Length Extrapolation"): the bias is a conditionally positive definite
kernel of the distance, in the paper's two trained variants, logarithmic and power:

    logits[h, i, j] += -r1_h * log(1 + r2_h * |i - j|)       (``kernel: log``, the default)
    logits[h, i, j] += -r1_h * |i - j| ** r2_h               (``kernel: power``, 0 < r2_h <= 2)

with learned ``r1_h, r2_h > 0`` for every head ``h``, one set shared by all layers (the authors'
reference code, chijames/KERPLE ``gpt2_model.py``, builds one ``ParallelKerpleLog``/``ParallelKerplePower``
module and hands it to every layer).

Parameterisation (posbench's choice, documented): the reference code keeps the parameters in range
by clamping them in place before every forward (``r >= 0.01``, and ``r2 <= 2`` for the power
kernel), a projected gradient step. posbench reparameterises instead, with no side effects in the
forward: ``r1 = exp(a)``, and ``r2 = exp(b)`` for the log kernel or ``r2 = 2 * sigmoid(b)`` for the
power kernel, so positivity and ``0 < r2 < 2`` hold by construction. Initialisation follows the
reference code: log kernel ``r1 ~ U(0, 2)``, ``r2 ~ U(0, 1)``; power kernel ``r1 ~ U(0, 1)``,
``r2 ~ U(0, 2)``; each draw is clipped to ``[0.01, 1.99]`` (the reference code's lower clamp; the
upper end keeps ``2 * sigmoid`` invertible) and mapped back through the parameterisation.

Bidirectional attention: the kernels depend on ``|i - j|`` only, so they are symmetric by
definition: a head cannot tell a key to its left from a key at the same distance to its right.
That is the paper's definition (a CPD kernel of the distance) and posbench keeps it. The paper
trains causal language models, where only ``j <= i`` is visible and ``|i - j| = i - j``.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from posbench.encodings.base import ENCODINGS, AttentionShape, PositionalEncoding, relative_distance

#: The reference code's lower clamp on every parameter; also keeps the initial draws off 0 (and 2).
EPS = 0.01


@ENCODINGS.register("kerple")
class Kerple(PositionalEncoding):
    description = "learned log or power kernel of |i - j| on logits, per head (Chi et al. 2022, KERPLE)"
    family = "bias"
    shift_invariant = True
    fractional = True

    def __init__(self, shape: AttentionShape, kernel: Literal["log", "power"] = "log"):
        super().__init__(shape)
        self.kernel = kernel
        r1_max, r2_max = (2.0, 1.0) if kernel == "log" else (1.0, 2.0)
        r1 = (torch.rand(shape.heads, 1, 1) * r1_max).clamp(EPS, 2 - EPS)
        r2 = (torch.rand(shape.heads, 1, 1) * r2_max).clamp(EPS, 2 - EPS)
        self.log_r1 = nn.Parameter(r1.log())
        self.raw_r2 = nn.Parameter(r2.log() if kernel == "log" else torch.logit(r2 / 2))

    def params(self) -> tuple[Tensor, Tensor]:
        """``(r1, r2)``, each ``[heads, 1, 1]``: positive, and ``r2 < 2`` for the power kernel."""
        r2 = self.raw_r2.exp() if self.kernel == "log" else 2 * torch.sigmoid(self.raw_r2)
        return self.log_r1.exp(), r2

    def bias(self, q_pos: Tensor, k_pos: Tensor, layer: int) -> Tensor:
        r1, r2 = self.params()
        dist = relative_distance(q_pos, k_pos).abs().to(torch.float32)[:, None]  # [B, 1, Lq, Lk]
        if self.kernel == "log":
            return -r1 * torch.log1p(r2 * dist)
        return -r1 * dist.pow(r2)

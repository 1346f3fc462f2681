"""ALiBi, attention with linear biases (Press et al. 2022, "Train Short, Test Long", §3):

    logits[h, i, j] += -m_h * (i - j)          (causal: only j <= i is visible)

with head slopes forming a geometric sequence that starts at ``2^(-8/n)`` with the same ratio for
``n`` heads a power of two; for other head counts the paper takes the slopes of the closest
smaller power of two ``c`` and adds every other slope of the ``2c`` sequence (``alibi_slopes``).

Bidirectional attention (posbench's choice, documented): the paper defines only the causal case,
and a penalty on ``|i - j|`` alone would make every head blind to left versus right. posbench gives
each head one slope for keys to its left and another for keys to its right: head h uses
``m_h`` to the left and ``m_(n-1-h)`` (the same slopes in reverse order) to the right, so
``bias = -m_h * max(i - j, 0) - m_(n-1-h) * max(j - i, 0)``. Under a causal mask this is
exactly the paper's ALiBi.

Learned slopes (option ``learned_slopes``, default false; not in the paper, which keeps the slopes
fixed): the slopes become trainable, parameterised by their logarithms (``m = exp(log_m)``, so they
stay positive), initialised to the paper's geometric slopes above, one set shared by all layers like
the fixed slopes (older x-transformers releases had the same ``LearnedAlibiPositionalBias``:
exponentiated learned log-slopes). Bidirectional attention learns the left and the right slopes
separately (initialised as above); under a causal mask the right-hand slopes only ever meet masked
keys, so there they are not parameters but mirror the learned left slopes, exactly as fixed ALiBi does.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from posbench.encodings.base import ENCODINGS, AttentionShape, PositionalEncoding, relative_distance


def alibi_slopes(heads: int) -> list[float]:
    """The paper's head slopes for any head count."""

    def power_of_two(n: int) -> list[float]:
        start = 2.0 ** (-8.0 / n)
        return [start ** (i + 1) for i in range(n)]

    if math.log2(heads).is_integer():
        return power_of_two(heads)
    closest = 2 ** math.floor(math.log2(heads))
    return power_of_two(closest) + alibi_slopes(2 * closest)[0::2][: heads - closest]


@ENCODINGS.register("alibi")
class ALiBi(PositionalEncoding):
    description = "linear distance penalty on logits, per-head slopes, optionally learned (Press et al. 2022)"
    family = "bias"
    shift_invariant = True
    fractional = True

    def __init__(self, shape: AttentionShape, learned_slopes: bool = False):
        super().__init__(shape)
        self.learned_slopes = bool(learned_slopes)
        slopes = torch.tensor(alibi_slopes(shape.heads))[:, None, None]  # [heads, 1, 1]
        if not self.learned_slopes:
            self.register_buffer("left", slopes, persistent=False)
            self.register_buffer("right", slopes.flip(0), persistent=False)
            return
        self.log_left = nn.Parameter(slopes.log())
        self.log_right = None if shape.causal else nn.Parameter(slopes.flip(0).log())

    def slopes(self) -> tuple[Tensor, Tensor]:
        """The slopes for keys to the left and to the right of the query, each ``[heads, 1, 1]``."""
        if not self.learned_slopes:
            return self.left, self.right
        left = self.log_left.exp()
        return left, (left.flip(0) if self.log_right is None else self.log_right.exp())

    def bias(self, q_pos: Tensor, k_pos: Tensor, layer: int) -> Tensor:
        left, right = self.slopes()
        dist = relative_distance(q_pos, k_pos).to(torch.float32)[:, None]  # [B, 1, Lq, Lk]
        return -(left * dist.clamp(min=0) + right * (-dist).clamp(min=0))
